"""The camera catalogue (data/cameras.yaml) and the device-kind registry: a new camera model is
one catalogue entry; every kind has a sampler and a Blender builder; loader errors carry the fix.
Rendering tests skip when Blender is not installed."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from data.boxes import parse_boxes
from data.labels import DEFAULT_LABELS_PATH, LabelSet, load_labels
from data.manifest import read_manifest, validate_manifest
from data.synth import generate, render
from data.synth.catalogue import DEFAULT_CATALOGUE_PATH, load_catalogue
from data.synth.cli import main as synth_main
from data.synth.devices import DEVICE_KINDS

# reusable by end-to-end tests: `camid data synth --labels L --catalogue C ...`
FIXTURES = Path(__file__).with_name("fixtures") / "new_camera"
NEW_LABELS, NEW_CATALOGUE, NEW = FIXTURES / "labels.yaml", FIXTURES / "cameras.yaml", "huawei_new_dome"


def _top_level_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_kind_has_a_sampler_and_a_builder_and_is_used() -> None:
    builders = _top_level_functions(render.SCENE_SCRIPT)
    missing = {k: v.builder for k, v in DEVICE_KINDS.items() if v.builder not in builders}
    assert not missing, f"builders not defined in blender_scene.py: {missing}"
    assert all(callable(v.sample) for v in DEVICE_KINDS.values())
    catalogue = load_catalogue()
    used = {s.kind for c in catalogue.classes for s in c.subjects}
    used |= {k for c in catalogue.classes for k in c.companions}
    assert used == set(DEVICE_KINDS), f"kinds no catalogue entry reaches: {set(DEVICE_KINDS) - used}"


def test_shipped_catalogue_covers_the_shipped_labels() -> None:
    catalogue = load_catalogue()
    assert set(load_labels().names) <= set(catalogue.names)
    assert catalogue.path == DEFAULT_CATALOGUE_PATH
    assert abs(sum(catalogue.mix.values()) - 1.0) < 1e-9


def _write(tmp_path: Path, entry: object) -> Path:
    doc = yaml.safe_load(DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8"))
    doc["classes"]["huawei_x"] = entry
    path = tmp_path / "cams.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _subjects(kind: str = "turret", form: str = "dome", weight: float = 1) -> dict[str, object]:
    return {"subjects": [{"kind": kind, "form_factor": form, "weight": weight}]}


GOOD = {"share": 0.1, **_subjects(), "companions": []}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"subjects": [{"kind": "blimp", "form_factor": "dome", "weight": 1}]},
            "unknown device kind 'blimp'",
        ),
        ({"subjects": [{"kind": "turret", "form_factor": "dome", "weight": 0}]}, "weight must be a positive"),
        ({"share": -1}, "share must be a positive"),
        ({"companions": ["turret", "kite"]}, "unknown device kind 'kite'"),
        (_subjects(form="round"), "form_factor 'round'"),
        ({"subjects": []}, "'subjects' must be a non-empty list"),
    ],
)
def test_loader_errors_name_file_class_and_problem(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ValueError, match="huawei_x") as err:
        load_catalogue(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_loader_accepts_a_good_entry(tmp_path: Path) -> None:
    entry = load_catalogue(_write(tmp_path, GOOD)).get("huawei_x")
    assert entry.subjects[0].kind == "turret" and entry.companions == () and entry.share == 0.1


def test_new_class_is_planned_from_its_catalogue_entry() -> None:
    labels, catalogue = load_labels(NEW_LABELS), load_catalogue(NEW_CATALOGUE)
    plans = generate.plan_set(40, seed=4, size=32, samples=1, catalogue=catalogue, labels=labels)
    new = [p for p in plans if p["label"] == NEW]
    assert new and {p["subject_kind"] for p in new} <= {"vandal_dome", "turret"}
    companions = {d["kind"] for p in new for d in p["devices"][1:]}
    assert companions <= {"huawei_bullet", "street_light", "sign"}
    # an image's scene depends on (seed, index, label) only: adding a class changes no other scene
    base = generate.plan_set(40, seed=4, size=32, samples=1)
    same = [i for i in range(40) if base[i]["label"] == plans[i]["label"]]
    assert same and all(base[i]["devices"] == plans[i]["devices"] for i in same)


def test_box_label_of_each_device_kind() -> None:
    shipped, labels = load_catalogue(), load_labels()
    assert shipped.class_of_kind("huawei_bullet", labels) == "huawei_ipc6225_vrz_es"
    assert shipped.class_of_kind("alpr", labels) == "other_camera"
    # look-alikes, framed only by no_camera or only ever companions, are hard negatives
    assert shipped.class_of_kind("street_light", labels) == "no_camera"
    assert shipped.class_of_kind("loudspeaker", labels) == "no_camera"
    # a camera whose class the labels lack has no label (its box is left out)
    only_new = LabelSet(tuple(c for c in load_labels(NEW_LABELS) if c.name in (NEW, "no_camera")))
    assert shipped.class_of_kind("other_bullet", only_new) is None
    # one shape drawing two models: the image's class decides, else the label is ambiguous
    new, new_labels = load_catalogue(NEW_CATALOGUE), load_labels(NEW_LABELS)
    assert new.class_of_kind("vandal_dome", new_labels, NEW) == NEW
    assert new.class_of_kind("vandal_dome", new_labels, "other_camera") == "other_camera"
    assert new.class_of_kind("vandal_dome", only_new) == NEW  # other_camera is not a class here
    with pytest.raises(ValueError, match="'vandal_dome' is a subject of other_camera, huawei_new_dome"):
        new.class_of_kind("vandal_dome", new_labels, "huawei_ipc6625_z30")


def test_ambiguous_companion_fails_before_rendering(tmp_path: Path) -> None:
    path = _write(tmp_path, {**GOOD, "companions": []})  # huawei_x frames turret, as other_camera does
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["classes"]["huawei_ipc6625_z30"]["companions"] = ["turret"]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    labels = tmp_path / "labels.yaml"
    labels_doc = yaml.safe_load(DEFAULT_LABELS_PATH.read_text("utf-8"))
    labels_doc["classes"].append({"name": "huawei_x", "form_factor": "dome", "target": True})
    labels.write_text(yaml.safe_dump(labels_doc), encoding="utf-8")
    with pytest.raises(ValueError, match="'turret' is a subject of .*huawei_x.* has no single label"):
        generate.plan_set(
            40,
            seed=1,
            catalogue=load_catalogue(path),
            labels=load_labels(labels),
            classes=["huawei_ipc6625_z30"],
        )


def test_class_missing_from_catalogue_fails_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = synth_main(["--labels", str(NEW_LABELS), "--n", "4", "--out", str(tmp_path / "s"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert NEW in err and "cameras.yaml" in err and "add an entry" in err
    assert not (tmp_path / "s").exists()  # nothing planned to disk, nothing rendered


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed: make blender")
def test_new_class_renders_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "s"
    argv = ["--labels", str(NEW_LABELS), "--catalogue", str(NEW_CATALOGUE), "--n", "5", "--size", "32",
            "--samples", "1", "--chunk", "5", "--out", str(out), "--quiet"]  # fmt: skip
    assert synth_main(argv) == 0
    manifest = out / generate.MANIFEST_NAME
    assert validate_manifest(manifest, load_labels(NEW_LABELS)) == []
    records = read_manifest(manifest).records
    assert NEW in {r.label for r in records} and len(records) == 5
    assert all((out / r.path).is_file() for r in records)
    # the new model's renders carry boxes labelled with the new class
    assert any(b.label == NEW for r in records if r.label == NEW for b in parse_boxes(r.extra["boxes"]))
