"""``camid evaluate`` on a checkpoint and on its ONNX export gives the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.cli import evaluate_main
from training.evaluate import evaluate, load_evaluation


@pytest.fixture(scope="module")
def tiny_onnx(tiny_run, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from model.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(tiny_run.checkpoint, out, n_random=2)
    return out


def test_checkpoint_and_onnx_give_the_same_metrics(
    tiny_run,
    tiny_onnx: Path,
    tiny_manifest: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    a = evaluate(tiny_run.checkpoint, tiny_manifest, tmp_path / "ckpt", split="test", n_boot=30)
    b = evaluate(tiny_onnx, tiny_manifest, tmp_path / "onnx", split="test", n_boot=30)
    assert a.metrics["model"]["kind"] == "checkpoint" and b.metrics["model"]["kind"] == "onnx"
    np.testing.assert_allclose(a.outputs.probs, b.outputs.probs, atol=1e-4)
    assert (a.decisions == b.decisions).all()
    for k, v in a.metrics["metrics"].items():
        assert v["value"] == pytest.approx(b.metrics["metrics"][k]["value"], abs=1e-9, nan_ok=True), k
    assert a.metrics["data"]["manifest_hash"] == b.metrics["data"]["manifest_hash"]


def test_evaluate_cli_writes_report(tiny_run, tiny_manifest: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rc = evaluate_main(
        [
            "--model",
            str(tiny_run.checkpoint),
            "--data",
            str(tiny_manifest),
            "--split",
            "val",
            "--out",
            str(tmp_path),
            "--bootstrap",
            "20",
        ]
    )
    assert rc == 0
    metrics, rows = load_evaluation(tmp_path)
    assert metrics["data"]["split"] == "val" and metrics["bootstrap"]["unit"] == "group"
    assert len(rows) == metrics["n"] == sum(metrics["n_per_class"].values())
    m = metrics["metrics"]
    for key in (
        "accuracy",
        "macro_f1",
        "flag_precision",
        "auto_share",
        "camera_recall",
        "camera_specificity",
    ):
        assert key in m and len(m[key]["ci95"]) == 2
    assert {"ece_before", "ece_after"} <= set(metrics["calibration"])
    html = (tmp_path / "report.html").read_text()
    assert "<script" not in html and "camid evaluation" in html
    for png in ("confusion_matrix.png", "reliability.png", "pr_curves.png"):
        assert (tmp_path / png).stat().st_size > 1000
    json.dumps(metrics)
