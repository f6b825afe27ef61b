"""Distillation: the student learns what its teachers say, and refuses teachers it cannot follow."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from data.labels import LabelSet, load_labels
from model.checkpoint import load_checkpoint, save_checkpoint
from tests.training.tinydata import TINY_OVERRIDES
from training.config import resolve_config
from training.evaluate import evaluate
from training.train import train


def _opinionated_teacher(tiny_run, path: Path, favourite: int) -> Path:  # type: ignore[no-untyped-def]
    """The tiny run's model made to answer class ``favourite`` for every photo."""
    model, meta = load_checkpoint(tiny_run.checkpoint)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-8.0)
        model.classifier.bias[favourite] = 8.0
    return save_checkpoint(path, model, meta.contract, config=meta.config)


def _val_predictions(run_dir: Path, manifest: Path) -> tuple[list[str], float]:
    """The validation photos' predicted classes and the accuracy against their labels."""
    ev = evaluate(
        run_dir / "checkpoint.pt", manifest, run_dir / "eval_val", split="val", n_boot=10, report=False
    )
    with (ev.out_dir / "predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["pred"] for r in rows], sum(r["pred"] == r["label"] for r in rows) / len(rows)


def test_student_follows_teachers_soft_labels(tiny_run, tiny_manifest: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    names = load_labels().names
    teacher = _opinionated_teacher(tiny_run, tmp_path / "teacher.pt", favourite=2)
    over = {**TINY_OVERRIDES, "mode": "finetune", "epochs": 5, "views_per_image": 1, "bootstrap": 10}
    soft = train(
        tiny_manifest,
        tmp_path / "soft",
        resolve_config(None, **over, distill_from=[str(teacher)], distill_weight=1.0),
    )
    hard = train(
        tiny_manifest,
        tmp_path / "hard",
        resolve_config(None, **over, distill_from=[str(teacher)], distill_weight=0.0),
    )
    soft_preds, soft_acc = _val_predictions(soft.run_dir, tiny_manifest)
    hard_preds, hard_acc = _val_predictions(hard.run_dir, tiny_manifest)
    # only the teacher's opinion: (nearly) every photo is its favourite class
    assert soft_preds.count(names[2]) >= 0.9 * len(soft_preds)
    # only the labels: the photos' own classes, far from the teacher's single answer
    assert hard_preds.count(names[2]) < soft_preds.count(names[2])
    assert hard_acc >= soft_acc + 0.25
    assert load_checkpoint(soft.checkpoint)[1].config["distill_from"] == [str(teacher)]


def test_teachers_with_other_classes_or_input_are_refused(
    tiny_run, tiny_manifest: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model, meta = load_checkpoint(tiny_run.checkpoint)
    over = {**TINY_OVERRIDES, "mode": "finetune", "epochs": 1, "views_per_image": 1}
    bigger = resolve_config(None, **{**over, "image_size": 96}, distill_from=[str(tiny_run.checkpoint)])
    with pytest.raises(ValueError, match=r"reads 64 px .* this run 96 px"):
        train(tiny_manifest, tmp_path / "size", bigger)
    reordered = LabelSet(tuple(reversed(meta.contract.labels.classes)))
    other = save_checkpoint(tmp_path / "other.pt", model, meta.contract.with_updates(labels=reordered))
    with pytest.raises(ValueError, match="other.pt predicts"):
        train(tiny_manifest, tmp_path / "cls", resolve_config(None, **over, distill_from=[str(other)]))
    with pytest.raises(ValueError, match="distill_from needs mode finetune"):
        resolve_config(None, **{**over, "mode": "fast"}, distill_from=[str(tiny_run.checkpoint)])
