"""A tiny exported camid model (random ``test_efficientnet``, 64 px), built once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")
TINY_SIZE = 64


@dataclass(frozen=True)
class TinyModel:
    checkpoint: Path
    onnx: Path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """Checkpoint + ONNX export; skips where the training extras (torch, timm, onnx) are absent."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    pytest.importorskip("onnx")
    from data.contract import ModelContract
    from data.labels import load_labels
    from data.preprocess import ResizeRule
    from model.checkpoint import save_checkpoint
    from model.export import export_onnx, random_inputs
    from model.factory import create_model

    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=len(LABELS), pretrained=None).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(100.0)  # spread the logits: decisions are not all near-ties
    folder = tmp_path_factory.mktemp("tiny_model")
    ckpt = save_checkpoint(
        folder / "tiny.pt",
        model,
        ModelContract(
            labels=load_labels(),
            architecture="test_efficientnet",
            resize=ResizeRule(size=TINY_SIZE),
            temperature=1.5,
            thresholds={"flag": 0.6, "reject": 0.2},
            metrics={"macro_f1": 0.25},
            trained_on={"manifest_hash": "test"},
            version="0.0.1",
        ),
    )
    photos = random_inputs(8, TINY_SIZE, seed=3)
    export_onnx(ckpt, folder / "tiny.onnx", name="camid-tiny", parity_images=np.asarray(photos))
    return TinyModel(ckpt, folder / "tiny.onnx")
