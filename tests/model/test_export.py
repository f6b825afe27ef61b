from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model import export as export_mod
from model.cli import export_main
from model.export import (
    ExportError,
    ParityError,
    QuantizationRefused,
    export_onnx,
    manifest_inputs,
    random_inputs,
)
from tests.model.conftest import LABELS, TINY_SIZE

KEYS = {
    "labels",
    "targets",
    "input_size",
    "resize",
    "temperature",
    "thresholds",
    "version",
    "name",
    "architecture",
    "trained_on",
    "metrics",
    "precision",
}


@pytest.fixture(scope="module")
def fp32(tiny_checkpoint: Path, photo_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny.onnx"
    report = export_onnx(
        tiny_checkpoint, out, name="camid-tiny", version="2026.11.0", parity_manifest=photo_manifest
    )
    assert report.path == out and report.precision == "fp32" and report.n_photos == 12
    assert report.parity_max_abs_softmax <= 1e-4 and report.agreement == 1.0
    return out


def _meta(path: Path) -> dict[str, object]:
    proto = onnx.load(path)
    props = proto.metadata_props
    return {p.key.removeprefix("camid."): json.loads(p.value) for p in props if p.key.startswith("camid.")}


def test_checker_and_metadata(fp32: Path) -> None:
    onnx.checker.check_model(onnx.load(fp32))
    meta = _meta(fp32)
    assert KEYS <= set(meta)
    assert [c["name"] for c in meta["labels"]] == list(LABELS)
    assert meta["input_size"] == [3, TINY_SIZE, TINY_SIZE]
    assert meta["resize"]["size"] == TINY_SIZE and meta["temperature"] == 1.5
    assert meta["thresholds"] == {"flag": 0.5, "reject": 0.2} and meta["version"] == "2026.11.0"
    assert meta["name"] == "camid-tiny" and meta["architecture"] == "test_efficientnet"
    assert meta["targets"] == ["huawei_ipc6625_z30", "huawei_ipc6225_vrz_es"] and meta["precision"] == "fp32"


def test_onnx_metadata_is_the_checkpoints_contract(fp32: Path, tiny_checkpoint: Path) -> None:
    from data.contract import ModelContract, contract_fields
    from model.checkpoint import load_checkpoint

    _, ckpt = load_checkpoint(tiny_checkpoint)
    props = {p.key: p.value for p in onnx.load(fp32).metadata_props}
    exported = ModelContract.from_metadata_props(props, str(fp32))
    renamed = ("name", "version")  # export names and versions the file (camid export --name/--version)
    for name in contract_fields():
        if name not in renamed:
            assert getattr(exported, name) == getattr(ckpt.contract, name), name
    assert (exported.name, exported.version) == ("camid-tiny", "2026.11.0")


def test_io_contract_and_dynamic_batch(fp32: Path, tiny_checkpoint: Path, photo_manifest: Path) -> None:
    import torch

    from model.checkpoint import load_checkpoint

    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)"
    assert [o.name for o in sess.get_outputs()] == ["logits", "cam"]
    model, ckpt = load_checkpoint(tiny_checkpoint)
    inputs = manifest_inputs(photo_manifest, ckpt.contract)
    photos = np.concatenate([inputs, random_inputs(4, TINY_SIZE, seed=9)])
    for n in (1, 3, len(photos)):
        logits, cam = sess.run(None, {"image": photos[:n]})
        assert logits.shape == (n, 4) and cam.shape[:2] == (n, 4)
        np.testing.assert_allclose(cam.mean(axis=(2, 3)), logits, atol=1e-5)
        with torch.no_grad():
            expected = model(torch.from_numpy(photos[:n])).numpy()
        p, q = export_mod.softmax(expected, 1.5), export_mod.softmax(logits, 1.5)
        assert np.abs(p - q).max() <= 1e-4


def test_parity_failure_writes_nothing(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export_mod.onnx_logits
    monkeypatch.setattr(
        export_mod, "onnx_logits", lambda proto, x: real(proto, x) + np.eye(4)[np.arange(len(x)) % 4]
    )
    with pytest.raises(ParityError, match="differs from torch"):
        export_onnx(tiny_checkpoint, tmp_path / "m.onnx", n_random=4, exporter="legacy")
    assert not list(tmp_path.iterdir())


def test_int8_kept_when_it_agrees(tiny_checkpoint: Path, photo_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    report = export_onnx(
        tiny_checkpoint, out, int8=True, calibration=photo_manifest, min_agreement=0.5, exporter="legacy"
    )
    assert report.precision == "int8" and report.agreement >= 0.5 and out.is_file()
    assert _meta(out)["precision"] == "int8"
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    from serve.engine import Engine

    assert Engine.load(out, threads=1).info.precision == "int8"


def test_int8_refused_when_agreement_is_too_low(
    tiny_checkpoint: Path, photo_manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(QuantizationRefused, match="agrees with fp32 on only"):
        export_onnx(
            tiny_checkpoint,
            tmp_path / "int8.onnx",
            int8=True,
            calibration=photo_manifest,
            min_agreement=1.01,
            exporter="legacy",
        )
    assert not list(tmp_path.iterdir())


def test_fp16_weights_halve_the_file(
    fp32: Path, tiny_checkpoint: Path, photo_manifest: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fp16.onnx"
    report = export_onnx(tiny_checkpoint, out, fp16=True, parity_manifest=photo_manifest, exporter="legacy")
    assert report.precision == "fp16-weights" and report.agreement >= 0.99
    assert out.stat().st_size < 0.7 * fp32.stat().st_size


def test_int8_weights_quarter_the_weights_and_keep_the_answers(
    fp32: Path, tiny_checkpoint: Path, photo_manifest: Path, tmp_path: Path
) -> None:
    from serve.engine import Engine

    out = tmp_path / "int8w.onnx"
    report = export_onnx(
        tiny_checkpoint, out, int8_weights_only=True, parity_manifest=photo_manifest, exporter="legacy"
    )
    assert report.precision == "int8-weights" and report.agreement >= 0.99
    assert out.stat().st_size < 0.5 * fp32.stat().st_size
    engine, reference = Engine.load(out), Engine.load(fp32)
    assert engine.info.precision == "int8-weights"

    # the weights are folded back to float at load (else every run dequantises them: 4x slower)
    def folds(e: Engine) -> bool:
        try:
            return (
                e.session.get_session_options().get_session_config_entry("session.disable_quant_qdq") == "1"
            )
        except RuntimeError:  # onnxruntime: the entry was never set
            return False

    assert folds(engine) and not folds(reference)
    x = manifest_inputs(photo_manifest, engine.info)
    ours, theirs = engine.run(x)[0], reference.run(x)[0]
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    with pytest.raises(ExportError, match="choose one"):
        export_onnx(
            tiny_checkpoint, tmp_path / "x.onnx", int8_weights_only=True, fp16=True, exporter="legacy"
        )


def test_cli(
    tiny_checkpoint: Path, photo_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.onnx"
    assert (
        export_main(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "--parity",
                str(photo_manifest),
                "--exporter",
                "legacy",
                "--version",
                "1.2.3",
            ]
        )
        == 0
    )
    assert out.is_file() and _meta(out)["version"] == "1.2.3" and "wrote" in capsys.readouterr().out
    refused = tmp_path / "refused.onnx"
    assert (
        export_main(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--out",
                str(refused),
                "--int8",
                "--calibration",
                str(photo_manifest),
                "--min-agreement",
                "1.01",
                "--exporter",
                "legacy",
            ]
        )
        == 1
    )
    assert not refused.exists() and "agrees with fp32" in capsys.readouterr().err
    assert export_main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(refused)]) == 1
    assert export_main(["--out", str(refused)]) == 2
