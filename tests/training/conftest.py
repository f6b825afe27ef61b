"""Fixtures of the training tests: tiny generated photos and a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.detdata import DETECTOR_OVERRIDES, make_box_manifest
from tests.training.tinydata import TINY_OVERRIDES, make_manifest


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("tiny_photos"))


@pytest.fixture(scope="session")
def tiny_run(tiny_manifest: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A fast-mode run (head + 1 fine-tuned block, 2 epochs) on the tiny photos."""
    import torch

    from training.config import resolve_config
    from training.train import train

    torch.set_num_threads(2)
    cfg = resolve_config(None, **{**TINY_OVERRIDES, "epochs": 30, "finetune_blocks": 1, "finetune_epochs": 2})
    return train(tiny_manifest, tmp_path_factory.mktemp("run"), cfg)


@pytest.fixture(scope="session")
def detector_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``(manifest, DetectResult)``: a tiny detector (~90 s) trained on drawn cameras (detdata)."""
    import torch

    from training.config import resolve_config
    from training.detect import train_detector

    torch.set_num_threads(2)
    data = make_box_manifest(tmp_path_factory.mktemp("boxes"))
    cfg = resolve_config(None, **DETECTOR_OVERRIDES)
    return data, train_detector(data, tmp_path_factory.mktemp("detector_run"), cfg)
