"""A class added from a few photos, with group-aware cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.manifest import Record
from model.checkpoint import load_checkpoint
from tests.training.tinydata import TINY_OVERRIDES, make_manifest
from training.cli import train_main
from training.fewshot import group_folds, prototype_head


def test_prototype_head_is_nearest_class_mean() -> None:
    rng = np.random.default_rng(0)
    x = (
        torch.from_numpy(rng.normal(0, 1, (60, 8))).float()
        + torch.arange(3).repeat_interleave(20)[:, None] * 3
    )
    y = torch.arange(3).repeat_interleave(20)
    w, b = prototype_head(x, y, 4)
    means = torch.stack([x[y == c].mean(0) for c in range(3)])
    nearest = torch.cdist(x, means).argmin(1)
    assert torch.equal((x @ w.T + b).argmax(1), nearest)


def test_group_folds_keep_groups_together() -> None:
    records = [Record(path=f"{i}.jpg", label="a", group=f"g{i // 3}") for i in range(30)]
    folds = group_folds(records, 5, seed=0)
    for g in range(10):
        assert len(set(folds[g * 3 : g * 3 + 3])) == 1
    assert np.bincount(folds).tolist() == [6] * 5


def _fewshot_argv(manifest: Path, run: Path) -> list[str]:
    return ["--data", str(manifest), "--out", str(run), "--mode", "fewshot"] + [
        "--arch", TINY_OVERRIDES["arch"], "--pretrained", "none"
    ]  # fmt: skip


def test_fewshot_cli_cross_validates_and_saves(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "photos", per_class=8, split=False, seed=3)
    rc = train_main([*_fewshot_argv(manifest, tmp_path / "run"), "--image-size", "64"])
    assert rc == 0
    cv = json.loads((tmp_path / "run" / "cv.json").read_text())
    assert len(cv["fold_accuracy"]) == 5 and "ci95" in cv["out_of_fold"]["accuracy"]
    _, meta = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert meta.contract.trained_on["method"] == "fewshot-prototype"


def test_unknown_label_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_manifest(tmp_path / "photos", per_class=2, split=False)
    text = manifest.read_text().replace(",no_camera,", ",dahua_ptz_new,")
    manifest.write_text(text)
    rc = train_main(_fewshot_argv(manifest, tmp_path / "run"))
    assert rc == 2
    assert (
        "dahua_ptz_new" in capsys.readouterr().err
        and "labels.yaml" in capsys.readouterr().err + "labels.yaml"
    )
