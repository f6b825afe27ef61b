"""Detector evaluation: metrics from hand-built finders (fast) and ``camid evaluate`` on an
exported tiny detector (reuses the session's ``detector_run``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from data.boxes import LabeledBox, format_boxes, record_boxes
from data.detection import Camera
from data.labels import load_labels
from data.manifest import Manifest, Record, read_manifest, write_manifest
from tests.training.detdata import make_box_manifest
from training.cli import evaluate_main
from training.deteval import DetEvaluation, PhotoEval, PhotoFinding, evaluate_cameras, summary_lines

LABELS = load_labels()
Box = tuple[float, float, float, float]


@pytest.fixture(scope="module")
def boxes_manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """18 drawn photos (6 without a camera, 6 with one, 6 with two), groups of two photos."""
    path = make_box_manifest(tmp_path_factory.mktemp("deteval"), n=18, seed=3)
    m = read_manifest(path)
    return m.with_records(dataclasses.replace(r, group=f"g{i // 2}") for i, r in enumerate(m.records))


def _camera(box: Box, label: str, confidence: float) -> Camera:
    return Camera(box, label, confidence, ((label, confidence), (LABELS.negative, 1.0 - confidence)))


def _finder(
    manifest: Manifest, cameras_of: Callable[[Record], list[Camera]]
) -> Callable[[Sequence[Path]], list[PhotoFinding]]:
    """A finder that looks the photo up in the manifest and returns ``cameras_of(record)``."""
    by_path = {manifest.resolve(r): r for r in manifest.records}

    def find(paths: Sequence[Path]) -> list[PhotoFinding]:
        out = []
        for p in paths:
            cams = cameras_of(by_path[p])
            best = max(cams, key=lambda c: c.confidence, default=None)
            label = best.label if best else LABELS.negative
            decision = "flag" if best and label in LABELS.targets else "reject"
            out.append(PhotoFinding(tuple(cams), label, best.confidence if best else 0.9, decision))
        return out

    return find


def _truth_cameras(r: Record, confidence: float = 0.95) -> list[Camera]:
    return [_camera(b.box, b.label, confidence) for b in record_boxes(r) if b.label in LABELS.cameras]


def _evaluate(manifest: Manifest, finder: Callable[[Record], list[Camera]], **kw: object) -> DetEvaluation:
    return evaluate_cameras(
        _finder(manifest, finder), manifest.records, manifest.root, LABELS, n_boot=40, **kw
    )  # type: ignore[arg-type]


def test_a_perfect_finder_gets_ap_1_and_recall_1(boxes_manifest: Manifest) -> None:
    ev = _evaluate(boxes_manifest, _truth_cameras)
    m = ev.metrics
    assert m["counts"]["photos"] == 18 and m["counts"]["cameras"] == 18
    assert m["counts"]["camera_free_photos"] == 6 and m["counts"]["unboxed_camera_photos"] == 0
    present = [c for c, n in m["counts"]["cameras_per_class"].items() if n]
    assert present and all(m["ap_per_class"][c] == pytest.approx(1.0) for c in present)
    assert np.isnan(m["ap_per_class"]["other_camera"])  # no true box: undefined, null in JSON
    assert m["ap_any_camera"] == pytest.approx(1.0)
    for where in ("camera_free_photos", "all_photos"):
        r = m["recall_at_false"][where]
        assert r["recall"] == 1.0 and r["found"] == r["total"] == 18 and r["false_per_photo"] == 0
    at = m["at_threshold"]
    assert at["false_cameras"] == 0
    assert sum(b["found"] for b in at["by_bucket"].values()) == 18
    assert sum(b["total"] for b in at["by_bucket"].values()) == 18
    for k in ("box_recall", "box_recall_right_label", "camera_recall", "camera_specificity", "accuracy"):
        assert m["metrics"][k]["value"] == 1.0, k
    assert m["metrics"]["false_cameras_per_camera_free_photo"]["value"] == 0.0
    assert m["bootstrap"]["unit"] == "group" and m["bootstrap"]["n_units"] == 9
    assert all(not p.missed for p in ev.photos)


def test_shifted_boxes_find_nothing_and_count_as_false_cameras(boxes_manifest: Manifest) -> None:
    def shifted(r: Record) -> list[Camera]:
        cams = _truth_cameras(r)
        return [dataclasses.replace(c, box=(c.box[0] + 40, c.box[1], c.box[2] + 40, c.box[3])) for c in cams]

    m = _evaluate(boxes_manifest, shifted).metrics
    assert m["ap_any_camera"] == 0.0 and m["recall_at_false"]["all_photos"]["recall"] == 0.0
    assert m["at_threshold"]["false_cameras"] == 18
    assert m["metrics"]["box_recall"]["value"] == 0.0
    assert m["metrics"]["false_cameras_per_photo"]["value"] == pytest.approx(1.0)  # 18 false / 18 photos
    # none of them on a camera-free photo; the photo verdicts are still right
    assert m["metrics"]["false_cameras_per_camera_free_photo"]["value"] == 0.0
    assert m["metrics"]["camera_recall"]["value"] == 1.0


def test_false_cameras_on_camera_free_photos_set_the_recall_threshold(boxes_manifest: Manifest) -> None:
    def with_ghosts(r: Record) -> list[Camera]:
        ghost = [_camera((60.0, 40.0, 75.0, 55.0), "huawei_ipc6625_z30", 0.5)]
        return _truth_cameras(r, 0.9) + (ghost if r.label == LABELS.negative else [])

    m = _evaluate(boxes_manifest, with_ghosts, false_per_photo=0.1).metrics
    free = m["recall_at_false"]["camera_free_photos"]
    assert free["recall"] == 1.0 and free["false_per_photo"] == 0.0 and free["threshold"] > 0.5
    assert m["metrics"]["false_cameras_per_camera_free_photo"]["value"] == 1.0  # what users get
    assert m["metrics"]["camera_specificity"]["value"] == 0.0
    lo, hi = m["metrics"]["camera_recall"]["ci95"]
    assert lo <= 1.0 <= hi


def test_a_camera_on_a_lookalike_is_false_and_the_lookalike_counts_nothing_else(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (200, 100), (90, 90, 90)).save(tmp_path / "light.jpg")
    light = LabeledBox(LABELS.negative, (100.0, 10.0, 120.0, 30.0), "street_light")
    rec = Record("light.jpg", LABELS.negative, "g0", extra={"boxes": format_boxes([light])})
    manifest = Manifest(tmp_path, [rec])
    ev = _evaluate(manifest, lambda r: [_camera(light.box, "huawei_ipc6625_z30", 0.8)])
    m = ev.metrics
    assert m["counts"]["cameras"] == 0 and m["counts"]["lookalikes"] == 1
    assert m["counts"]["camera_free_photos"] == 1
    assert m["at_threshold"]["false_cameras"] == 1 and m["at_threshold"]["false_cameras_on_lookalikes"] == 1
    assert m["at_threshold"]["by_bucket"]["5-15%"]["false_cameras"] == 1  # 20 px of 200
    assert all(b["total"] == 0 for b in m["at_threshold"]["by_bucket"].values())


def test_camera_photos_without_boxes_count_only_at_photo_level(
    boxes_manifest: Manifest, caplog: pytest.LogCaptureFixture
) -> None:
    unboxed = boxes_manifest.with_records(
        dataclasses.replace(r, extra={"boxes": ""}) for r in boxes_manifest.records
    )
    with caplog.at_level(logging.WARNING, logger="training.deteval"):
        ev = _evaluate(unboxed, lambda r: _truth_cameras(boxes_manifest.records[int(r.path[:3])]))
    assert "no photo has camera boxes" in caplog.text
    m = ev.metrics
    assert m["counts"]["unboxed_camera_photos"] == 12 and len(m["unboxed_photos"]) == 12
    assert m["counts"]["cameras"] == 0 and m["at_threshold"]["false_cameras"] == 0
    assert np.isnan(m["ap_any_camera"]) and np.isnan(m["metrics"]["box_recall"]["value"])
    assert m["metrics"]["camera_recall"]["value"] == 1.0
    assert m["metrics"]["camera_specificity"]["value"] == 1.0
    json.dumps(m)  # still serialisable (NaN -> null when written)
    assert any("camera_recall" in line for line in summary_lines(m))


def test_unknown_box_labels_are_refused(boxes_manifest: Manifest) -> None:
    bad = LabeledBox("dahua_xyz", (1.0, 1.0, 10.0, 10.0))
    r = dataclasses.replace(boxes_manifest.records[0], extra={"boxes": format_boxes([bad])})
    with pytest.raises(ValueError, match="dahua_xyz"):
        _evaluate(boxes_manifest.with_records([r]), lambda r: [])


# --- end to end on an exported tiny detector -------------------------------------------------


@pytest.fixture(scope="module")
def detector_onnx(detector_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    from model.export import export_onnx

    data, result = detector_run
    out = tmp_path_factory.mktemp("det_onnx") / "detector.onnx"
    export_onnx(result.checkpoint, out)
    return data, out


def test_engine_finder_serves_exactly_what_the_engine_serves(detector_onnx: tuple[Path, Path]) -> None:
    from serve.engine import Engine
    from serve.photos import decode_photo
    from training.deteval import engine_finder

    data, onnx = detector_onnx
    manifest = read_manifest(data)
    paths = [manifest.resolve(r) for r in manifest.records if r.split == "test"]
    engine = Engine.load(onnx)
    # a lower camera threshold than calibrated, so that this tiny model serves some cameras
    engine.info = dataclasses.replace(engine.info, thresholds={**engine.info.thresholds, "camera": 0.3})
    found = engine_finder(engine, batch_size=4)(paths)
    photos = [decode_photo(p.read_bytes(), min_side=engine.min_side) for p in paths]
    preds = engine.classify([p.image for p in photos], sizes=[(p.width, p.height) for p in photos])
    assert sum(len(f.cameras) for f in found) > 0
    for f, p, photo in zip(found, preds, photos, strict=True):
        assert (f.cameras, f.label, f.confidence, f.decision) == (
            p.cameras,
            p.label,
            p.confidence,
            p.decision,
        )
        assert f.size == (photo.width, photo.height)
        assert f.candidates is not None and set(f.cameras) <= set(f.candidates)


def test_camid_evaluate_on_an_exported_detector(
    detector_onnx: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, onnx = detector_onnx
    m = read_manifest(data)
    # the test photos plus one camera nobody drew: a sure miss, so the report has a miss to show
    blank = next(r for r in m.records if r.split == "test" and r.label == LABELS.negative)
    ghost = LabeledBox("huawei_ipc6625_z30", (40.0, 20.0, 56.0, 36.0))
    hard = dataclasses.replace(
        blank, label=ghost.label, group="ghost", extra={"boxes": format_boxes([ghost])}
    )
    data = write_manifest(m.with_records([*m.records, hard]), tmp_path / "with_ghost.csv")
    out = tmp_path / "eval"
    argv = ["--model", str(onnx), "--data", str(data), "--split", "test", "--out", str(out)]
    assert evaluate_main([*argv, "--bootstrap", "30", "--iou", "0.5", "--false-per-photo", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "recall@0.1FP/free" in printed and "AP50 huawei_ipc6625_z30" in printed
    assert "camera_recall" in printed and "report:" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    test = [r for r in read_manifest(data).records if r.split == "test"]
    assert metrics["task"] == "detect" and metrics["counts"]["photos"] == len(test) == 17
    assert metrics["counts"]["cameras"] == sum(len(record_boxes(r)) for r in test)
    assert metrics["model"]["kind"] == "onnx" and metrics["data"]["split"] == "test"
    assert 0 < metrics["settings"]["camera_threshold"] <= 1
    assert set(metrics["ap_per_class"]) == set(LABELS.cameras)
    for k in ("camera_recall", "camera_specificity", "flag_precision", "flag_recall", "accuracy"):
        assert len(metrics["metrics"][k]["ci95"]) == 2
    lines = [json.loads(line) for line in (out / "cameras.jsonl").read_text().splitlines()]
    assert len(lines) == len(test)
    assert {"path", "label", "truth", "cameras", "verdict"} <= set(lines[0])
    assert sum(len(x["truth"]) for x in lines) == metrics["counts"]["cameras"]
    missed = sum(t["found"] is False for x in lines for t in x["truth"])
    page = (out / "report.html").read_text()
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained
    assert "By camera size" in page and "AP per class" in page and "Missed cameras" in page
    assert missed >= 1 and any(t["found"] is False for t in lines[-1]["truth"])  # the ghost
    assert page.count('<img src="data:image/png;base64,') >= min(missed, 8)
    assert "missed huawei_ipc6625_z30" in page


def _with_tiny_crop(data: Path) -> tuple[Manifest, Record]:
    """The detector fixture's manifest and a 26x24 test crop beside it, which the server refuses."""
    from PIL import Image

    m = read_manifest(data)
    Image.new("RGB", (26, 24), (90, 90, 90)).save(m.root / "tiny_crop.jpg")
    return m, Record("tiny_crop.jpg", "no_camera", "tiny", split="test")


def test_camid_evaluate_leaves_out_photos_the_server_refuses_and_says_which(
    detector_onnx: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, onnx = detector_onnx
    m, tiny = _with_tiny_crop(data)
    path = write_manifest(Manifest(m.root, [*m.records, tiny]), m.root / "with_tiny.csv")
    out = tmp_path / "eval"
    argv = ["--model", str(onnx), "--data", str(path), "--split", "test", "--out", str(out)]
    assert evaluate_main([*argv, "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert "left out 1 photo(s) the server refuses, e.g. tiny_crop.jpg: 26x24 pixels is too small" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["photos"] == sum(r.split == "test" for r in m.records)
    (refused,) = metrics["data"]["refused_by_the_server"]
    assert refused.startswith("tiny_crop.jpg: 26x24 pixels is too small")
    # a split of nothing but refused photos is an error that names the manifest and the reason
    only = write_manifest(Manifest(m.root, [tiny]), m.root / "only_tiny.csv")
    assert (
        evaluate_main(["--model", str(onnx), "--data", str(only), "--split", "test", "--out", str(out)]) == 2
    )
    assert "refuses every photo" in capsys.readouterr().err


def test_camid_evaluate_bad_inputs_exit_2_naming_the_problem(
    detector_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    data, result = detector_run
    missing = tmp_path / "nope.onnx"
    assert evaluate_main(["--model", str(missing), "--data", str(data), "--out", str(tmp_path / "e")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert (
        evaluate_main(["--model", str(result.checkpoint), "--data", str(data), "--out", str(tmp_path)]) == 2
    )
    assert "camid export" in capsys.readouterr().err


def test_detector_unboxed_manifest_still_gets_photo_metrics(
    detector_onnx: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, onnx = detector_onnx
    m = read_manifest(data)
    records = [dataclasses.replace(r, extra={"boxes": ""}) for r in m.records if r.split == "test"]
    path = write_manifest(Manifest(m.root, records), m.root / "unboxed.csv")
    with caplog.at_level(logging.WARNING):
        rc = evaluate_main(
            ["--model", str(onnx), "--data", str(path), "--out", str(tmp_path), "--bootstrap", "20"]
        )
    assert rc == 0 and "no photo has camera boxes" in caplog.text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["ap_any_camera"] is None and metrics["metrics"]["camera_recall"]["value"] is not None


def _benchmark_module(name: str):  # type: ignore[no-untyped-def]
    import importlib.util
    import sys

    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_localization_benchmark_reports_small_cameras_from_the_same_evaluation(
    detector_onnx: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    data, onnx = detector_onnx
    loc = _benchmark_module("localization")
    out = tmp_path / "loc"
    argv = ["--model", f"tiny={onnx}", "--renders", str(data), "--small", "0.1", "0.2", "--out", str(out)]
    assert loc.main([*argv, "--bootstrap", "20"]) == 0
    table = capsys.readouterr().out
    result = json.loads((out / "localization.json").read_text())["tiny"]["renders"]
    manifest = read_manifest(data)
    # the model's own training and validation photos are left out: it is measured on its test split
    unseen = [r for r in manifest.records if r.split == "test"]
    assert result["left_out_as_trained_on"] == len(manifest.records) - len(unseen) > 0
    assert result["photos"] == len(unseen)
    assert f"renders: left out {len(manifest.records) - len(unseen)} photo(s) a model trained" in table
    small = 0
    for r in unseen:
        with Image.open(manifest.resolve(r)) as im:
            width = im.width
        small += sum(0.1 <= b.width / width < 0.2 for b in record_boxes(r) if b.label != "no_camera")
    assert small > 0 and result["small"]["small_total"] == small
    assert f"| tiny | {result['small']['small_found']}/{small} = " in table
    assert (out / "tiny" / "renders" / "report.html").is_file()
    assert result["iou"] == 0.5 and "cameras found (IoU ≥ 0.5)" in table
    # a looser match (--renders-iou) counts at least the cameras the strict one counts
    assert loc.main([*argv, "--bootstrap", "20", "--renders-iou", "0.1"]) == 0
    loose = json.loads((out / "localization.json").read_text())["tiny"]["renders"]
    assert loose["iou"] == 0.1 and "cameras found (IoU ≥ 0.1)" in capsys.readouterr().out
    assert loose["small"]["small_found"] >= result["small"]["small_found"]


def test_localization_benchmark_leaves_out_photos_the_server_refuses_and_says_which(
    detector_onnx: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    data, onnx = detector_onnx
    m, tiny = _with_tiny_crop(data)
    # a crop of a photo the model trained on shares that photo's group: it is not a held-out photo
    trained = next(r for r in m.records if r.split == "train")
    with Image.open(m.resolve(trained)) as im:
        im.crop((0, 0, im.width // 2, im.height // 2)).save(m.root / "crop_of_trained.jpg")
    crop = Record("crop_of_trained.jpg", "no_camera", trained.group, split="test")
    path = write_manifest(Manifest(m.root, [*m.records, tiny, crop]), m.root / "with_tiny.csv")
    loc = _benchmark_module("localization")
    out = tmp_path / "loc"
    assert (
        loc.main(["--model", f"tiny={onnx}", "--real", str(path), "--out", str(out), "--bootstrap", "20"])
        == 0
    )
    result = json.loads((out / "localization.json").read_text())["tiny"]["real_all"]
    assert result["photos"] == sum(r.split == "test" for r in m.records)  # the rest it trained on
    assert result["left_out_as_trained_on"] == sum(r.split != "test" for r in m.records) + 1  # + the crop
    (refused,) = result["refused_by_the_server"]
    assert refused.startswith("tiny_crop.jpg: 26x24 pixels is too small")


def test_localization_benchmark_says_where_each_rendered_camera_is_lost() -> None:
    loc = _benchmark_module("localization")

    def cam(box: tuple[float, float, float, float], p_camera: float) -> Camera:
        probs = (("huawei_ipc6625_z30", p_camera), ("no_camera", 1.0 - p_camera))
        return Camera(box, "huawei_ipc6625_z30", p_camera, probs)

    truth = (
        LabeledBox("huawei_ipc6625_z30", (100.0, 100.0, 120.0, 120.0)),  # 1 % of 2000 px: found
        LabeledBox("huawei_ipc6625_z30", (500.0, 100.0, 520.0, 120.0)),  # a loose box on it: touched
        LabeledBox("huawei_ipc6625_z30", (900.0, 100.0, 960.0, 160.0)),  # a good box, too weak: boxed
        LabeledBox("huawei_ipc6625_z30", (1500.0, 100.0, 1520.0, 120.0)),  # nothing near: lost
    )
    candidates = (
        cam((101.0, 101.0, 121.0, 121.0), 0.9),
        cam((490.0, 90.0, 530.0, 130.0), 0.8),
        cam((902.0, 100.0, 962.0, 160.0), 0.2),
    )
    finding = PhotoFinding(candidates[:2], "huawei_ipc6625_z30", 0.9, "flag", candidates, (2000, 1500))
    record = Record("a.jpg", "huawei_ipc6625_z30", "g")
    photo = PhotoEval(Path("a.jpg"), record, 2000, 1500, truth, (), finding, (0, -1), False, False)
    lost = loc.where_lost([photo], "no_camera", iou_min=0.5, threshold=0.5)
    assert lost["<2%"] == {"total": 3, "touched": 2, "boxed": 1, "found": 1}
    assert lost["2-5%"] == {"total": 1, "touched": 1, "boxed": 1, "found": 0}
    # only the surest candidates count as what a crop classifier gets to read
    assert loc.where_lost([photo], "no_camera", iou_min=0.5, threshold=0.5, top=1)["2-5%"]["touched"] == 0
    table = loc.lost_table({"m": {"renders": {"where_lost": lost}}}, 0.5)
    assert table[-1] == "| m | 4 (4 under 5 %) | 3 (3 under 5 %) | 2 (2 under 5 %) | 1 (1 under 5 %) |"
