"""The sim-to-real benchmark's ensemble: the mean of its members' probabilities, never a member."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.training.test_deteval import _benchmark_module

FIELDS = ["path", "group", "label", "pred", "confidence", "decision", "p_other_camera", "p_no_camera"]


def _member(path: Path, rows: list[tuple[str, float, str]]) -> Path:
    """A member's predictions: (photo, p_other_camera, decision) per row."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for photo, p_cam, decision in rows:
            pred = "other_camera" if p_cam > 0.5 else "no_camera"
            w.writerow(
                {"path": photo, "group": photo, "label": "other_camera", "pred": pred,
                 "confidence": max(p_cam, 1 - p_cam), "decision": decision,
                 "p_other_camera": p_cam, "p_no_camera": 1 - p_cam}
            )  # fmt: skip
    return path


def test_ensemble_takes_the_mean_probability_so_one_unsure_member_does_not_decide(tmp_path: Path) -> None:
    sim2real = _benchmark_module("sim2real")
    a = _member(tmp_path / "a.csv", [("x.jpg", 0.9, "review"), ("y.jpg", 0.45, "reject")])
    b = _member(tmp_path / "b.csv", [("x.jpg", 0.3, "reject"), ("y.jpg", 0.40, "reject")])
    c = _member(tmp_path / "c.csv", [("x.jpg", 0.4, "review"), ("y.jpg", 0.55, "review")])
    out = sim2real.mean_predictions([a, b, c], tmp_path / "ens" / "real.csv")
    with out.open(newline="", encoding="utf-8") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    # x: two of three members say "no camera", but the mean (0.533) says camera
    assert rows["x.jpg"]["pred"] == "other_camera"
    assert float(rows["x.jpg"]["p_other_camera"]) == pytest.approx(1.6 / 3)
    assert rows["y.jpg"]["pred"] == "no_camera" and rows["y.jpg"]["decision"] == "reject"
    assert rows["x.jpg"]["decision"] == "review"
    figures = sim2real.real_figures(out)
    assert figures["cameras_found"]["k"] == 1 and figures["cameras_found"]["n"] == 2


def test_ensemble_refuses_members_that_saw_different_photos(tmp_path: Path) -> None:
    sim2real = _benchmark_module("sim2real")
    a = _member(tmp_path / "a.csv", [("x.jpg", 0.9, "review")])
    b = _member(tmp_path / "b.csv", [("z.jpg", 0.9, "review")])
    with pytest.raises(ValueError, match="not of the same photos"):
        sim2real.mean_predictions([a, b], tmp_path / "ens.csv")


def test_weight_average_is_one_model_with_the_members_mean_weights(tmp_path: Path) -> None:
    import torch

    from data.contract import ModelContract
    from data.labels import load_labels
    from data.preprocess import ResizeRule
    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.factory import create_model

    sim2real = _benchmark_module("sim2real")
    contract = ModelContract(
        labels=load_labels(), architecture="test_efficientnet", resize=ResizeRule(size=64)
    )
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = create_model("test_efficientnet", num_classes=4, pretrained=None)
        paths.append(save_checkpoint(tmp_path / f"m{seed}.pt", model, contract))
    soup = sim2real.weight_average(paths, tmp_path / "soup" / "checkpoint.pt")
    (a, _), (b, _), (mean, meta) = (load_checkpoint(p) for p in (*paths, soup))
    assert not torch.equal(a.classifier.weight, b.classifier.weight)
    assert torch.allclose(mean.classifier.weight, (a.classifier.weight + b.classifier.weight) / 2)
    assert meta.contract.labels == contract.labels
