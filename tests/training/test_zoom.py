"""Look-then-zoom: crops around boxes, the crop classifier's run, the exported pair in the engine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ImageDraw

from data.boxes import LabeledBox, format_boxes, iou, record_boxes
from data.contract import ModelContract
from data.crops import crop_square
from data.labels import load_labels
from data.manifest import Manifest, Record, read_manifest, write_manifest
from data.zoom import ZoomSettings, companion_path
from tests.training.detdata import SIZE, draw_cameras

ZOOM_OVERRIDES: dict[str, Any] = {
    "arch": "test_efficientnet", "pretrained": "none", "mode": "zoom", "image_size": 48, "epochs": 8,
    "batch_size": 32, "lr": 3e-3, "patience": 8, "zoom_backgrounds": 2, "zoom_max_proposals": 4,
    "zoom_min_px": 16, "bootstrap": 50, "flag_precision": 0.6,
}  # fmt: skip
COLOURS = {"huawei_ipc6625_z30": (235, 235, 240), "huawei_ipc6225_vrz_es": (240, 200, 40)}


def _lookalike_manifest(folder: Path, n: int = 6) -> Path:
    """Photos with 1-2 cameras and a grey "street light" look-alike box (no_camera)."""
    rng = np.random.default_rng(3)
    records = []
    for i in range(n):
        img, boxes = draw_cameras(rng, 1 + i % 2)
        ImageDraw.Draw(img).rectangle((40, 60, 56, 68), fill=(150, 150, 150))
        boxes.append(LabeledBox("no_camera", (40.0, 60.0, 56.0, 68.0), "street_light"))
        img.save(folder / f"{i}.jpg", quality=95)
        records.append(
            Record(f"{i}.jpg", boxes[0].label, f"g{i}", split="train" if i < 4 else "val",
                   extra={"boxes": format_boxes(boxes)})
        )  # fmt: skip
    return write_manifest(Manifest(folder, records), folder / "manifest.csv")


def _config(**overrides: Any) -> Any:
    from training.config import resolve_config

    return resolve_config(None, **{**ZOOM_OVERRIDES, **overrides})


def test_crops_are_centred_on_each_box_with_its_label(tmp_path: Path) -> None:
    from training.zoom import collect_crops

    manifest = read_manifest(_lookalike_manifest(tmp_path))
    labels = load_labels()
    crops = collect_crops(manifest, manifest.records, labels, _config(), detector=None, train=False)
    boxes = [b for r in manifest.records for b in record_boxes(r)]
    assert len(crops.arrays) == len(boxes) == len(crops.targets)
    for arr, target, box in zip(crops.arrays, crops.targets, boxes, strict=True):
        assert arr.shape == (3, 48, 48) and arr.dtype == np.uint8
        assert labels.names[target] == box.label  # cameras keep their class, the look-alike is no_camera
        # the box centre, where crop_square put it (moved inside the photo near its edge)
        x0, y0, x1, y1 = crop_square(box.box, SIZE, SIZE * 3 // 4, min_px=16)
        u = round(((box.box[0] + box.box[2]) / 2 - x0) / (x1 - x0) * 48)
        v = round(((box.box[1] + box.box[3]) / 2 - y0) / (y1 - y0) * 48)
        centre = arr[:, v - 2 : v + 2, u - 2 : u + 2].reshape(3, -1).mean(axis=1)
        expected = COLOURS.get(box.label, (150, 150, 150))
        assert np.abs(centre - expected).max() < 30, (box, centre)


def test_background_squares_hold_no_camera_centre() -> None:
    from training.zoom import background_specs

    labels = load_labels()
    rng = np.random.default_rng(0)
    settings = ZoomSettings(min_px=16)
    for _ in range(20):
        _, boxes = draw_cameras(rng, 2)
        specs = background_specs(boxes, SIZE, SIZE * 3 // 4, 3, rng, settings, labels)
        assert specs and all(s.label == "no_camera" and s.source == "background" for s in specs)
        for s in specs:
            x0, y0, x1, y1 = crop_square(s.box, SIZE, SIZE * 3 // 4, context=settings.context, min_px=16)
            assert x1 - x0 >= 16 - 1e-6
            for b in boxes:
                cx, cy = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
                assert not (x0 <= cx <= x1 and y0 <= cy <= y1)


def test_training_patches_give_jittered_uint8_crops(tmp_path: Path) -> None:
    from training.zoom import PatchDataset, collect_crops

    manifest = read_manifest(_lookalike_manifest(tmp_path))
    cfg = _config(zoom_backgrounds=2)
    crops = collect_crops(manifest, manifest.records, load_labels(), cfg, detector=None, train=True)
    n_boxes = sum(len(record_boxes(r)) for r in manifest.records)
    assert len(crops.patches) == len(crops.targets) == n_boxes + 2 * len(manifest.records)
    ds = PatchDataset(crops.patches, crops.targets, 48, seed=0)
    x, y = ds[0]
    assert tuple(x.shape) == (3, 48, 48) and str(x.dtype) == "torch.uint8" and y == crops.targets[0]
    assert not np.array_equal(ds[0][0].numpy(), ds[0][0].numpy())  # jitter and augmentation vary


def test_the_box_target_follows_the_object_through_jitter_and_flip() -> None:
    import io

    from PIL import Image

    from data.zoom import refined_boxes
    from training.zoom import PAD, SHIFT_JITTER, PatchDataset

    side = 200
    base = side / PAD  # the crop side before jitter, in patch pixels
    patch = Image.new("RGB", (side, side), (60, 70, 80))
    # right of the patch's centre by more than the shift jitter, so a flip must move it left
    x0, y0 = side / 2 + (SHIFT_JITTER + 0.05) * base, side / 2 - 0.1 * base
    truth = (x0, y0, x0 + 0.12 * base, y0 + 0.08 * base)
    ImageDraw.Draw(patch).rectangle((truth[0], truth[1], truth[2] - 1, truth[3] - 1), fill=(255, 255, 255))
    buf = io.BytesIO()
    patch.save(buf, "PNG")
    ds = PatchDataset([buf.getvalue(), buf.getvalue()], [1, 0], 64, seed=3, truths=[truth, (np.nan,) * 4])
    lefts = seen = 0
    for _ in range(30):
        crop, offsets = ds.jittered(0)
        (box,) = refined_boxes([(0.0, 0.0, 64.0, 64.0)], np.array([offsets]))
        inside = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], 64.0), min(box[3], 64.0))
        white = np.argwhere(np.asarray(crop).min(axis=2) > 160)  # (y, x) of the object's pixels
        if len(white) < 4:  # jittered out of the crop: so is its box
            assert inside[2] - inside[0] < 2 or inside[3] - inside[1] < 2, box
            continue
        (wy0, wx0), (wy1, wx1) = white.min(axis=0), white.max(axis=0) + 1
        assert iou(inside, (float(wx0), float(wy0), float(wx1), float(wy1))) > 0.6, (box, white)
        seen += 1
        lefts += (box[0] + box[2]) / 2 < 32  # flipped: the object is left of the crop's centre
    assert seen >= 20 and 0 < lefts < seen
    x, y, target = ds[1]  # a crop without an object box teaches the class only
    assert y == 0 and tuple(x.shape) == (3, 64, 64) and bool(target.isnan().all())


def test_contract_round_trips_crop_and_zoom() -> None:
    base = ModelContract(labels=load_labels(), architecture="x")
    assert "camid.crop" not in base.to_metadata_props()
    assert ModelContract.from_metadata_props(base.to_metadata_props()).crop is None
    c = base.with_updates(crop={"context": 2.0, "min_px": 24.0}, zoom={"file": "a.zoom.onnx", "sha256": "0"})
    back = ModelContract.from_metadata_props(c.to_metadata_props())
    assert back == c and back.is_crop_classifier


@pytest.fixture(scope="module")
def zoom_run(detector_run, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import torch

    from training.zoom import train_zoom

    torch.set_num_threads(2)
    data, det = detector_run
    cfg = _config(zoom_detector=str(det.checkpoint), zoom_refine=True)
    return data, det, train_zoom(data, tmp_path_factory.mktemp("zoom"), cfg)


@pytest.fixture(scope="module")
def pair(zoom_run, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from model.cli import export_main

    _, det, zoom = zoom_run
    out = tmp_path_factory.mktemp("pair") / "pair.onnx"
    assert (
        export_main(["--checkpoint", str(det.checkpoint), "--zoom", str(zoom.checkpoint), "--out", str(out)])
        == 0
    )
    return out


def test_the_zoom_run_saves_a_calibrated_crop_classifier(zoom_run) -> None:  # type: ignore[no-untyped-def]
    from model.checkpoint import load_checkpoint

    _, _, zoom = zoom_run
    _, meta = load_checkpoint(zoom.checkpoint)  # a plain classifier checkpoint
    c = meta.contract
    assert c.task == "classify" and c.crop is not None and c.crop["calibrated_with_detector"]
    assert {"camera", "flag", "reject"} <= set(c.thresholds) and c.temperature > 0
    assert 0 <= c.crop["propose"] < 1 and c.crop["max_proposals"] == 4
    assert c.crop["refine"] is True and c.metrics["val_boxes"]["proposals_on_a_camera"] > 0
    assert [o.name for o in c.outputs] == ["logits", "cam", "box"]
    pair_figures = c.metrics["val_pair"]
    assert pair_figures["val_false_per_photo"] <= 0.1 + 1e-9
    assert set(pair_figures["propose_sweep"]) == {"0.02", "0.05", "0.1", "0.2", "0.3"}


def test_the_exported_pair_finds_cameras_with_the_zoom_labels(zoom_run, pair: Path) -> None:  # type: ignore[no-untyped-def]
    from data.images import load_image
    from serve.engine import Engine

    data, _, zoom = zoom_run
    engine = Engine.load(pair)
    assert engine.zoom is not None and engine.zoom.path == companion_path(pair)
    assert engine.info.zoom is not None and engine.info.thresholds["camera"] == zoom.thresholds["camera"]
    assert engine.min_side == max(SIZE, engine.zoom.settings.decode_side)
    manifest = read_manifest(data)
    test = [r for r in manifest.records if r.split == "test"]
    preds = engine.classify([load_image(manifest.resolve(r), min_side=engine.min_side) for r in test])
    hits = total = 0
    for r, pred in zip(test, preds, strict=True):
        truth = record_boxes(r)
        total += len(truth)
        hits += sum(any(iou(c.box, t.box) >= 0.3 and c.label == t.label for c in pred.cameras) for t in truth)
        if not truth:
            assert pred.label == "no_camera" or pred.cameras
    assert hits / total >= 0.5, f"the pair found {hits}/{total} cameras with the right label"


def _forced_pair(  # type: ignore[no-untyped-def]
    zoom_run, pair: Path, folder: Path, label: str, box: tuple[float, ...] | None = None
) -> Path:
    """The detector of ``pair`` with a crop classifier that always answers ``label`` (and, with
    ``box``, always reads those box offsets off the crop; ``()``: has no box head)."""
    import onnx
    import torch

    from model.checkpoint import load_checkpoint
    from model.export import export_onnx, set_metadata, zoom_contract
    from serve.engine import Engine

    _, _, zoom = zoom_run
    model, meta = load_checkpoint(zoom.checkpoint)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-10.0)
        model.classifier.bias[meta.contract.labels.index(label)] = 10.0
        if box == ():
            model.box_head = None
        elif box is not None:
            assert model.box_head is not None
            model.box_head.out.weight.zero_()
            model.box_head.out.bias.copy_(torch.tensor(box))
    out = folder / f"{label}{len(box) if box is not None else ''}.onnx"
    export_onnx((model, meta), companion_path(out), n_random=2)
    proto = onnx.load(pair)
    set_metadata(
        proto, zoom_contract(Engine.load(pair).info, meta.contract, companion_path(out)).to_metadata_props()
    )
    onnx.save(proto, out)
    return out


def _two_camera_photo() -> tuple[Any, list[LabeledBox]]:
    rng = np.random.default_rng(7)
    img, truth = draw_cameras(rng, 2)
    return img.resize((img.width * 4, img.height * 4)), [t.scaled(4, 4) for t in truth]


def test_labels_and_rejections_come_from_the_crop_classifier(zoom_run, pair: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from data.zoom import top_proposals
    from serve.engine import Engine

    img, _ = _two_camera_photo()
    rejecting = Engine.load(_forced_pair(zoom_run, pair, tmp_path, "no_camera"))
    batch = rejecting.prepare([img])
    scores = rejecting.session.run(["scores"], {"image": batch})[0][0]
    assert rejecting.zoom is not None and top_proposals(
        scores, rejecting.zoom.settings
    )  # the detector proposes
    (pred,) = rejecting.classify([img])
    assert pred.cameras == () and pred.label == "no_camera" and pred.decision == "reject"
    other = Engine.load(_forced_pair(zoom_run, pair, tmp_path, "other_camera"))
    (pred,) = other.classify([img])
    assert pred.cameras and all(
        c.label == "other_camera" for c in pred.cameras
    )  # the detector knows no such class
    assert len(pred.cameras) <= len(top_proposals(scores, rejecting.zoom.settings))  # each camera once
    assert all(abs(sum(p for _, p in c.probabilities) - 1) < 1e-6 for c in pred.cameras)


def test_the_served_box_is_the_one_the_crop_classifier_reads_off_its_crop(  # type: ignore[no-untyped-def]
    zoom_run, pair: Path, tmp_path: Path
) -> None:
    from data.preprocess import input_to_photo
    from data.zoom import crop_squares, top_proposals
    from serve.engine import Engine, ModelError

    img, _ = _two_camera_photo()
    # the crop classifier says: a camera a quarter of the crop wide and high (log 0.25), an eighth
    # of the crop right of the crop's centre
    forced = _forced_pair(zoom_run, pair, tmp_path, "huawei_ipc6625_z30", (0.125, 0.0, -1.3863, -1.3863))
    engine = Engine.load(forced)
    assert engine.zoom is not None and engine.zoom.settings.refine
    _, scores, _, boxes = engine.session.run(None, {"image": engine.prepare([img])})
    picked = top_proposals(scores[0], engine.zoom.settings)
    proposals = [
        input_to_photo(tuple(boxes[0][k]), img.width, img.height, engine.info.resize) for k in picked
    ]
    expected = []
    for x0, y0, x1, y1 in crop_squares(proposals, img.size, engine.zoom.settings):
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        expected.append((cx, cy - side / 8, cx + side / 4, cy + side / 8))
    (pred,) = engine.classify([img])
    assert pred.cameras and len(pred.cameras) <= len(expected)
    for cam in pred.cameras:
        assert any(np.allclose(cam.box, e, atol=0.01) for e in expected), (cam.box, expected)
    with pytest.raises(ModelError, match="refines boxes but this crop classifier has no box output"):
        Engine.load(_forced_pair(zoom_run, pair, tmp_path, "huawei_ipc6625_z30", ()))


def test_a_missing_or_changed_companion_is_a_clear_model_error(pair: Path, tmp_path: Path) -> None:
    from serve.engine import Engine, ModelError

    lonely = tmp_path / "lonely.onnx"
    shutil.copy(pair, lonely)
    with pytest.raises(ModelError, match=r"crop classifier .*pair\.zoom\.onnx is missing"):
        Engine.load(lonely)
    shutil.copy(companion_path(pair), tmp_path / companion_path(pair).name)
    with (tmp_path / companion_path(pair).name).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="sha256 differs"):
        Engine.load(lonely)


def test_export_refuses_a_whole_photo_classifier_as_zoom(zoom_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from model.checkpoint import load_checkpoint
    from model.export import ExportError, export_pair

    _, det, zoom = zoom_run
    model, meta = load_checkpoint(zoom.checkpoint)
    plain = (model, type(meta)(meta.contract.with_updates(crop=None)))
    with pytest.raises(ExportError, match="not a crop classifier"):
        export_pair(det.checkpoint, plain, tmp_path / "x.onnx")


def test_a_pair_in_fp16_weights_is_smaller_and_finds_the_same_cameras(  # type: ignore[no-untyped-def]
    zoom_run, pair: Path, tmp_path: Path
) -> None:
    from data.images import load_image
    from model.cli import export_main
    from serve.engine import Engine

    data, det, zoom = zoom_run
    out = tmp_path / "half.onnx"
    args = ["--checkpoint", str(det.checkpoint), "--zoom", str(zoom.checkpoint), "--out", str(out)]
    assert export_main([*args, "--fp16-weights"]) == 1  # no photos to compare on: refused, nothing written
    assert not out.exists() and not companion_path(out).exists()
    assert export_main([*args, "--fp16-weights", "--eval", str(data)]) == 0
    half, full = Engine.load(out), Engine.load(pair)
    assert half.info.precision == "fp16-weights" and half.zoom is not None
    for new, old in ((out, pair), (companion_path(out), companion_path(pair))):
        assert new.stat().st_size < 0.7 * old.stat().st_size  # tiny models: small tensors stay fp32
    manifest = read_manifest(data)
    photos = [load_image(manifest.resolve(r), min_side=full.min_side) for r in manifest.records[:12]]
    for a, b in zip(half.classify(photos), full.classify(photos), strict=True):
        assert [c.label for c in a.cameras] == [c.label for c in b.cameras]
        for ca, cb in zip(a.cameras, b.cameras, strict=True):
            assert iou(ca.box, cb.box) > 0.95 and abs(ca.confidence - cb.confidence) < 0.02


def test_candidates_come_from_the_same_model_run_as_the_served_cameras(  # type: ignore[no-untyped-def]
    zoom_run, pair: Path
) -> None:
    """Evaluation's low-threshold candidates (one model run) are exactly what a second run at that
    threshold finds, and asking for them changes nothing that is served."""
    import dataclasses

    from data.images import load_image
    from model.export import export_onnx
    from serve.engine import Engine

    data, det, _ = zoom_run
    detector = pair.with_name("detector-alone.onnx")
    export_onnx(det.checkpoint, detector)
    manifest = read_manifest(data)
    for path in (detector, pair):
        engine = Engine.load(path)
        photos = [load_image(manifest.resolve(r), min_side=engine.min_side) for r in manifest.records[:16]]
        low = Engine(engine.session, engine.info, engine.path, engine.zoom)
        low.info = dataclasses.replace(engine.info, thresholds={**engine.info.thresholds, "camera": 0.02})
        both = engine.classify(photos, candidate_threshold=0.02)
        assert [dataclasses.replace(p, candidates=None) for p in both] == engine.classify(photos)
        assert [p.candidates for p in both] == [tuple(p.cameras) for p in low.classify(photos)]
        if path == detector:  # weak peaks exist, so the check above compared something
            assert sum(len(p.candidates or ()) for p in both) > sum(len(p.cameras) for p in both)


def test_pasted_crops_hold_their_cutout_in_the_middle_with_its_label(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from tests.training.test_paste import make_cutouts
    from training.paste import load_cutouts
    from training.zoom import pasted_patches

    labels = load_labels()
    cutouts = load_cutouts(make_cutouts(tmp_path / "cut"), labels)
    image = Image.new("RGB", (640, 480), (90, 110, 130))  # a photo with one camera in a corner
    boxes = [LabeledBox("huawei_ipc6225_vrz_es", (560.0, 20.0, 600.0, 40.0))]
    settings, rng, seen = ZoomSettings(min_px=16), np.random.default_rng(0), set()
    for spec, patch, at in pasted_patches(
        image, image.size, boxes, cutouts, 12, rng, settings, labels, 96, widths=(0.03, 0.06)
    ):
        seen.add(spec.label)
        # the box head's truth is the pasted object's box, in the patch's pixels: in its middle
        assert (
            spec.truth == spec.box and abs((at[0] + at[2]) / 2 - 48) < 1 and abs((at[1] + at[3]) / 2 - 48) < 1
        )
        assert spec.source == "pasted" and iou(spec.box, boxes[0].box) == 0
        assert 0.03 <= (spec.box[2] - spec.box[0]) / image.width <= 0.06 + 1e-3
        pixels = np.asarray(Image.open(io.BytesIO(patch)), dtype=np.float32)
        centre = pixels[46:50, 46:50].reshape(-1, 3).mean(axis=0)
        # the white disc is a camera, the yellow bar (a look-alike) is the no-camera class; the
        # background is blue-grey (90, 110, 130)
        white, yellow = centre.min() > 180, centre[0] > 160 and centre[2] < 90
        assert pixels.shape == (96, 96, 3) and (white if spec.label == "huawei_ipc6625_z30" else yellow), (
            spec,
            centre,
        )
    assert seen == {"huawei_ipc6625_z30", "no_camera"}


def test_training_crops_with_pastes_add_them_to_the_counts(tmp_path: Path) -> None:
    from tests.training.test_paste import make_cutouts
    from training.paste import load_cutouts
    from training.zoom import collect_crops

    labels = load_labels()
    cutouts = load_cutouts(make_cutouts(tmp_path / "cut"), labels)
    manifest = read_manifest(_lookalike_manifest(tmp_path))
    cfg = _config(zoom_paste_from=str(tmp_path / "cut" / "manifest.csv"), zoom_paste=3)
    crops = collect_crops(manifest, manifest.records, labels, cfg, detector=None, train=True, cutouts=cutouts)
    pasted = sum(v for k, v in crops.counts.items() if k.startswith("pasted:"))
    assert pasted > len(manifest.records) and len(crops.patches) == len(crops.targets)
    with pytest.raises(ValueError, match="zoom_paste"):
        _config(zoom_paste=3)
    # a missing cutouts manifest names the command that renders it and the key to set
    with pytest.raises(ValueError, match=r"camid data synth --cutouts.*zoom_paste_from DIR/manifest\.csv"):
        load_cutouts(tmp_path / "none" / "manifest.csv", labels, "zoom_paste_from")
