"""``camid train --members K``: seeds trained on one split, combined, calibrated, exported as one model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.decision import softmax
from model.checkpoint import load_checkpoint
from model.ensemble import CamidEnsemble
from model.export import export_onnx, onnx_logits
from model.factory import create_model
from tests.training.tinydata import TINY_OVERRIDES, make_manifest
from training.config import resolve_config
from training.train import train

OVER = {**TINY_OVERRIDES, "mode": "finetune", "epochs": 2, "views_per_image": 1, "bootstrap": 20}


def _photos(n: int = 6, size: int = 64) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two seeds of the tiny photos, trained from a manifest without a split column."""
    torch.set_num_threads(2)
    manifest = make_manifest(tmp_path_factory.mktemp("unsplit"), split=False)
    out = tmp_path_factory.mktemp("ens")
    return manifest, train(manifest, out, resolve_config(None, **OVER, members=2))


def test_members_share_one_split_and_the_ensemble_is_their_mean(ensemble_run) -> None:  # type: ignore[no-untyped-def]
    _, result = ensemble_run
    run = result.run_dir
    members = [run / "members" / f"seed-{s}" for s in (0, 1)]
    splits = [(m / "split.csv").is_file() for m in members]
    assert (run / "split.csv").is_file() and not any(splits)  # members read the run's split
    assert [json.loads((m / "run.json").read_text())["trained_on"]["counts"] for m in members] == [
        json.loads((run / "run.json").read_text())["trained_on"]["counts"]
    ] * 2
    ensemble, meta = load_checkpoint(result.checkpoint)
    assert isinstance(ensemble, CamidEnsemble) and meta.contract.name.endswith("-x2")
    x = torch.from_numpy(_photos())
    with torch.no_grad():
        mean = torch.stack(
            [torch.softmax(load_checkpoint(m / "checkpoint.pt")[0](x), 1) for m in members]
        ).mean(0)
        assert torch.allclose(torch.softmax(ensemble(x), 1), mean, atol=1e-5)
        cams = [load_checkpoint(m / "checkpoint.pt")[0].forward_cam(x)[1] for m in members]
        assert torch.allclose(ensemble.forward_cam(x)[1], (cams[0] + cams[1]) / 2, atol=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["members"] == [str(m / "checkpoint.pt") for m in members]
    assert metrics["test"]["metrics"]["accuracy"]["value"] is not None  # evaluated like any run
    assert meta.contract.temperature == pytest.approx(metrics["temperature"])


def test_resume_keeps_finished_members(ensemble_run) -> None:  # type: ignore[no-untyped-def]
    manifest, result = ensemble_run
    member = result.run_dir / "members" / "seed-1" / "checkpoint.pt"
    before = member.stat().st_mtime_ns
    again = train(manifest, result.run_dir, resolve_config(None, **OVER, members=2), resume=True)
    assert member.stat().st_mtime_ns == before
    assert again.calibration is not None and result.calibration is not None
    assert again.calibration.temperature == pytest.approx(result.calibration.temperature)


def test_the_ensemble_exports_to_one_onnx_file_with_the_same_answers(ensemble_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, result = ensemble_run
    ensemble, meta = load_checkpoint(result.checkpoint)
    photos = _photos(16)
    report = export_onnx(result.checkpoint, tmp_path / "ens.onnx", parity_images=photos)
    ours = softmax(onnx_logits(report.path.read_bytes(), photos), meta.contract.temperature)
    with torch.no_grad():
        torch_p = softmax(ensemble(torch.from_numpy(photos)).numpy(), meta.contract.temperature)
    assert np.abs(ours - torch_p).max() < 1e-4


def test_members_must_agree_on_classes() -> None:
    a = create_model("test_efficientnet", 4, None)
    b = create_model("test_efficientnet", 3, None)
    with pytest.raises(ValueError, match="different numbers of classes"):
        CamidEnsemble([a, b])
    with pytest.raises(ValueError, match="members"):
        resolve_config(None, **{**OVER, "mode": "fast"}, members=3)
