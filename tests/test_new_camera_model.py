"""A researcher adds a third target camera model: labels file + catalogue entry -> renders ->
train -> export -> serve. The new class must be a target everywhere, with nothing read from the
default ``data/labels.yaml`` once the model exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
import yaml

from data.contract import ModelContract, contract_fields
from data.manifest import read_manifest

pytest.importorskip("timm")
CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "cameras.yaml"
pytestmark = pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed: make blender")

NEW = "huawei_new_dome"
LABELS = {
    "classes": [
        {"name": NEW, "display_name": "Huawei new dome", "form_factor": "dome", "target": True},
        {"name": "no_camera", "display_name": "No camera", "form_factor": "none", "target": False},
    ]
}


def _catalogue(path: Path) -> Path:
    """The shipped catalogue plus one entry: the new model drawn as a vandal dome."""
    doc = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    classes = doc["classes"]
    template = dict(classes["other_camera"])
    template["subjects"] = [{"kind": "vandal_dome", "form_factor": "dome", "weight": 1.0}]
    classes[NEW] = template
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_a_new_target_class_is_flagged_end_to_end(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from data.cli import main as data_main
    from model.checkpoint import load_checkpoint
    from model.cli import export_main
    from serve.app import create_app
    from tests.serve.apptools import files, settings_for
    from training.cli import train_main

    labels = tmp_path / "my_labels.yaml"
    labels.write_text(yaml.safe_dump(LABELS), encoding="utf-8")
    renders = tmp_path / "renders"
    rc = data_main(
        ["synth", "--labels", str(labels), "--catalogue", str(_catalogue(tmp_path / "cameras.yaml")),
         "--n", "24", "--size", "48", "--samples", "1", "--seed", "5", "--out", str(renders)]
    )  # fmt: skip
    assert rc == 0
    manifest = renders / "manifest.csv"
    assert {r.label for r in read_manifest(manifest).records} == {NEW, "no_camera"}

    run, config = tmp_path / "run", tmp_path / "config.yaml"
    settings = {"flag_precision": 0.5, "batch_size": 8, "bootstrap": 50}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    argv = ["--data", str(manifest), "--out", str(run), "--labels", str(labels), "--config", str(config),
            "--arch", "test_efficientnet", "--pretrained", "none", "--image-size", "48",
            "--epochs", "30"]  # fmt: skip
    assert train_main(argv) == 0
    model_path = tmp_path / "new.onnx"
    assert export_main(["--checkpoint", str(run / "checkpoint.pt"), "--out", str(model_path)]) == 0

    # the ONNX metadata is the checkpoint's contract, field by field
    _, ckpt = load_checkpoint(run / "checkpoint.pt")
    props = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    exported = ModelContract.from_metadata_props(props)
    for field in contract_fields():
        assert getattr(exported, field) == getattr(ckpt.contract, field), field
    assert exported.targets == (NEW,)

    app = create_app(settings_for(model_path, tmp_path / "var"))
    with TestClient(app) as client:
        described = client.get("/v1/model").json()
        assert described["targets"] == [NEW]
        photos = [p for p in read_manifest(manifest).records if p.label == NEW]
        body = [(renders / r.path).read_bytes() for r in photos]
        results = client.post("/v1/classify", files=files(*body)).json()["results"]
    decisions = [(r["label"], r["decision"]) for r in results]
    assert (NEW, "flag") in decisions, decisions
