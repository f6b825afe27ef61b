"""Knowledge distillation: one model learns from the mean probabilities of several trained ones.

An ensemble of models that differ only in their training seed is steadier on real photos than any
one of them (docs/synthetic.md), but costs one model per member at every prediction and in the
release file. A student trained on the same photos against the ensemble's mean probabilities (its
"soft labels") as well as the true labels keeps one model's cost. The teachers see the same
augmented batch as the student, so the soft labels cover every view the student is trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from data.labels import LabelSet
from data.preprocess import ResizeRule
from model.checkpoint import Classifier, load_checkpoint
from training.loop import LossStep

log = logging.getLogger(__name__)


def load_teachers(paths: Sequence[str | Path], labels: LabelSet, rule: ResizeRule) -> list[Classifier]:
    """The teacher classifiers (eval mode, frozen); each must have this run's classes in the same
    order and read the same input (size and resize mode), else ValueError naming the file."""
    if len(paths) < 1:
        raise ValueError("distill_from: give at least one teacher checkpoint")
    teachers = []
    for path in paths:
        try:
            model, meta = load_checkpoint(path)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"distill_from: {e}") from e
        names = meta.contract.labels.names
        if names != labels.names:
            raise ValueError(
                f"distill_from: {path} predicts {', '.join(names)}; this run has {', '.join(labels.names)}"
            )
        if meta.contract.resize != rule:
            raise ValueError(
                f"distill_from: {path} reads {meta.contract.resize.size} px ({meta.contract.resize.mode}); "
                f"this run {rule.size} px ({rule.mode}): train the student at the teachers' image_size"
            )
        for p in model.parameters():
            p.requires_grad_(False)
        teachers.append(model.eval())
    log.info("distilling from %d teacher(s): %s", len(teachers), ", ".join(str(p) for p in paths))
    return teachers


@torch.no_grad()
def teacher_probabilities(teachers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The mean of the teachers' softmax probabilities for a batch."""
    return torch.stack([F.softmax(t(x).float(), dim=1) for t in teachers]).mean(0)


def distill_step(
    teachers: Sequence[nn.Module],
    soft_share: float,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossStep:
    """The loss of an ``(images, labels)`` batch: ``soft_share`` x cross-entropy against the
    teachers' mean probabilities + the rest x cross-entropy against the labels; both weighted by
    the class weights of the true labels (class balance as in plain training)."""
    if not 0.0 <= soft_share <= 1.0:
        raise ValueError(f"distill_weight={soft_share}: use a share in [0, 1]")

    def step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y = batch
        x, y = x.to(device, non_blocking=True), torch.as_tensor(y).to(device)
        for t in teachers:
            t.to(device)
        log_p = F.log_softmax(model(x).float(), dim=1)
        soft = -(teacher_probabilities(teachers, x) * log_p).sum(1)
        w = torch.ones_like(soft) if class_weight is None else class_weight.to(device)[y]
        hard = F.cross_entropy(log_p, y, weight=class_weight, label_smoothing=label_smoothing)
        return soft_share * (w * soft).sum() / w.sum() + (1 - soft_share) * hard, len(y)

    return step
