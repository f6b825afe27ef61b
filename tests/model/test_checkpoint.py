from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.contract import ModelContract
from data.labels import LabelSet, load_labels
from data.preprocess import ResizeRule
from model.checkpoint import load_checkpoint, save_checkpoint
from model.factory import create_model

LABELS = load_labels()


def test_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=4, pretrained=None, drop_rate=0.1).eval()
    rule = ResizeRule(size=64, mode="center_crop", crop_pct=0.9)
    contract = ModelContract(
        labels=LABELS,
        architecture="test_efficientnet",
        resize=rule,
        temperature=1.7,
        thresholds={"flag": 0.9, "reject": 0.1},
        metrics={"macro_f1": 0.5},
        trained_on={"manifest_hash": "abc", "counts": {"no_camera": 3}},
        version="2026.11.0",
    )
    path = save_checkpoint(
        tmp_path / "run" / "best.pt",
        model,
        contract,
        config={"lr": 0.001},
        extra={"epoch": 3, "optimizer": {"state": {}, "param_groups": []}},
    )
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta.contract == contract  # every field, the labels' target flags included
    assert meta.contract.targets == ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es")
    assert meta.extra["epoch"] == 3 and meta.config["lr"] == 0.001
    assert loaded.dropout.p == 0.1


def test_checkpoint_as_pretrained_for_a_new_head(tmp_path: Path) -> None:
    model = create_model("test_efficientnet", num_classes=4, pretrained=None).eval()
    path = save_checkpoint(
        tmp_path / "c.pt", model, ModelContract(LABELS, "test_efficientnet", ResizeRule(64))
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
        two = LabelSet(LABELS.classes[:2])
        save_checkpoint(tmp_path / "y.pt", model, ModelContract(two, "test_efficientnet", ResizeRule(64)))


def test_checkpoint_from_before_the_contract_says_to_retrain(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    meta = {
        "arch": "test_efficientnet",
        "num_classes": 4,
        "labels": list(LABELS.names),
        "resize": {"size": 64},
    }
    torch.save({"format": "camid-checkpoint", "format_version": 1, "state_dict": {}, "meta": meta}, old)
    with pytest.raises(ValueError, match="retrain"):
        load_checkpoint(old)
