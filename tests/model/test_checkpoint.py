from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.preprocess import ResizeRule
from model.checkpoint import load_checkpoint, save_checkpoint
from model.factory import create_model

LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")


def test_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=4, pretrained=None, drop_rate=0.1).eval()
    rule = ResizeRule(size=64, mode="center_crop", crop_pct=0.9)
    path = save_checkpoint(
        tmp_path / "run" / "best.pt",
        model,
        arch="test_efficientnet",
        labels=LABELS,
        resize=rule,
        temperature=1.7,
        thresholds={"flag": 0.9, "reject": 0.1},
        metrics={"macro_f1": 0.5},
        trained_on={"manifest_hash": "abc", "counts": {"no_camera": 3}},
        config={"lr": 0.001},
        version="2026.11.0",
        extra={"epoch": 3, "optimizer": {"state": {}, "param_groups": []}},
    )
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta.arch == "test_efficientnet" and meta.labels == LABELS and meta.resize == rule
    assert meta.temperature == 1.7 and meta.thresholds == {"flag": 0.9, "reject": 0.1}
    assert meta.metrics["macro_f1"] == 0.5 and meta.trained_on["manifest_hash"] == "abc"
    assert meta.version == "2026.11.0" and meta.extra["epoch"] == 3 and meta.config["lr"] == 0.001
    assert loaded.dropout.p == 0.1


def test_checkpoint_as_pretrained_for_a_new_head(tmp_path: Path) -> None:
    model = create_model("test_efficientnet", num_classes=4, pretrained=None).eval()
    path = save_checkpoint(
        tmp_path / "c.pt", model, arch="test_efficientnet", labels=LABELS, resize=ResizeRule(64)
    )
    five = create_model("test_efficientnet", num_classes=5, pretrained=path).eval()
    x = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(five.forward_features(x), model.forward_features(x))


def test_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.pt"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a camid checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    model = create_model("test_efficientnet", num_classes=4, pretrained=None)
    with pytest.raises(ValueError, match="labels"):
        save_checkpoint(
            tmp_path / "y.pt", model, arch="test_efficientnet", labels=LABELS[:2], resize=ResizeRule(64)
        )
