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
from model.checkpoint import load_checkpoint
from model.ensemble import CamidEnsemble
from model.factory import CamidNet
from training.loop import LossStep

log = logging.getLogger(__name__)


def load_teachers(paths: Sequence[str | Path], labels: LabelSet, rule: ResizeRule) -> nn.Module:
    """The teachers as one frozen model in eval mode (several: their :class:`CamidEnsemble`, whose
    softmax is their mean probability); each must have this run's classes in the same order and
    read the same input (size and resize mode), else ValueError naming the file."""
    if len(paths) < 1:
        raise ValueError("distill_from: give at least one teacher checkpoint")
    teachers: list[CamidNet] = []
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
        teachers += (
            [m for m in model.members if isinstance(m, CamidNet)]
            if isinstance(model, CamidEnsemble)
            else [model]
        )
    log.info("distilling from %d teacher(s): %s", len(teachers), ", ".join(str(p) for p in paths))
    teacher: nn.Module = CamidEnsemble(teachers) if len(teachers) > 1 else teachers[0]
    return teacher.requires_grad_(False).eval()


def distill_step(
    teacher: nn.Module,
    soft_share: float,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossStep:
    """The loss of an ``(images, labels)`` batch: ``soft_share`` x cross-entropy against the
    teacher's probabilities + the rest x cross-entropy against the labels; both weighted by the
    class weights of the true labels (class balance as in plain training)."""
    if not 0.0 <= soft_share <= 1.0:
        raise ValueError(f"distill_weight={soft_share}: use a share in [0, 1]")
    placed: list[torch.device] = []  # the device the teacher was moved to (once, not every batch)

    def step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y = batch
        x, y = x.to(device, non_blocking=True), torch.as_tensor(y).to(device)
        if placed != [device]:
            teacher.to(device)
            placed[:] = [device]
        log_p = F.log_softmax(model(x).float(), dim=1)
        with torch.no_grad():
            target = F.softmax(teacher(x).float(), dim=1)
        soft = -(target * log_p).sum(1)
        w = torch.ones_like(soft) if class_weight is None else class_weight.to(device)[y]
        hard = F.cross_entropy(log_p, y, weight=class_weight, label_smoothing=label_smoothing)
        return soft_share * (w * soft).sum() / w.sum() + (1 - soft_share) * hard, len(y)

    return step
