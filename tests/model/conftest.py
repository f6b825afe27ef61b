"""Fixtures for model tests: a tiny random checkpoint written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.contract import ModelContract
from data.labels import load_labels
from data.preprocess import ResizeRule
from model.checkpoint import save_checkpoint
from model.factory import create_model

TINY_ARCH = "test_efficientnet"
TINY_SIZE = 64
LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init ``test_efficientnet`` checkpoint at 64 px with the four camid labels."""
    torch.manual_seed(0)
    model = create_model(TINY_ARCH, num_classes=len(LABELS), pretrained=None).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(100.0)  # spread the logits so top-1 is not a coin toss
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(
        path,
        model,
        ModelContract(
            labels=load_labels(),
            architecture=TINY_ARCH,
            resize=ResizeRule(size=TINY_SIZE),
            temperature=1.5,
            thresholds={"flag": 0.5, "reject": 0.2},
            metrics={"macro_f1": 0.25},
            trained_on={"manifest_hash": "test", "counts": {}},
            version="0.0.1",
        ),
    )


@pytest.fixture(scope="session")
def photo_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder manifest (``LABEL/*.jpg``) of 12 small generated photos."""
    from tests.conftest import make_photo

    root = tmp_path_factory.mktemp("photos")
    for i in range(12):
        make_photo(root / LABELS[i % len(LABELS)] / f"p{i}.jpg", size=(96 + 8 * i, 72), seed=i)
    return root
