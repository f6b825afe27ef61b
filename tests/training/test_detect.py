"""The camera detector learns boxes and labels: tiny drawn "cameras", one or two per photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.boxes import iou, record_boxes
from data.manifest import read_manifest
from tests.training.detdata import DETECTOR_OVERRIDES, SHAPES, SIZE, draw_cameras, make_box_manifest


def test_the_detector_finds_each_camera_with_its_own_label(detector_run) -> None:  # type: ignore[no-untyped-def]
    import torch
    from torch.utils.data import DataLoader

    from data.detection import decode_cameras
    from data.preprocess import input_to_photo
    from model.checkpoint import load_any_checkpoint
    from training.detect import detector_peaks
    from training.detection import DetectionDataset, collate

    data, result = detector_run
    model, meta = load_any_checkpoint(result.checkpoint)
    assert meta.contract.task == "detect" and "camera" in meta.contract.thresholds
    manifest = read_manifest(data)
    test = [r for r in manifest.records if r.split == "test"]
    loader = DataLoader(
        DetectionDataset(manifest, test, meta.contract.labels, meta.contract.resize), 4, collate_fn=collate
    )
    peaks, _, _ = detector_peaks(model, loader, torch.device("cpu"))
    hits, total, two_found = 0, 0, 0
    for record, p in zip(test, peaks, strict=True):
        cams, _ = decode_cameras(
            p.scores, p.class_logits, p.boxes, labels=meta.contract.labels,
            temperature=meta.contract.temperature, threshold=meta.contract.thresholds["camera"],
            to_photo=lambda b: input_to_photo(b, SIZE, SIZE * 3 // 4, meta.contract.resize),
        )  # fmt: skip
        truth = record_boxes(record)
        total += len(truth)
        for t in truth:
            hits += any(iou(c.box, t.box) >= 0.3 and c.label == t.label for c in cams)
        if len(truth) == 2 and sum(any(iou(c.box, t.box) >= 0.3 for c in cams) for t in truth) == 2:
            two_found += 1
    assert hits / total >= 0.6, f"found {hits}/{total} cameras with the right label"
    assert two_found >= 1, "no photo with two cameras got two boxes"


def test_exported_detector_serves_two_boxes_with_their_own_labels(detector_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from model.export import export_onnx
    from serve.engine import Engine, build_result
    from serve.schemas import ClassificationResult

    data, result = detector_run
    onnx_path = tmp_path / "detector.onnx"
    export_onnx(result.checkpoint, onnx_path)
    engine = Engine.load(onnx_path)
    assert engine.info.task == "detect"
    # a photo with a disc on the left and a bar on the right, shown to the server at 4x size
    rng = np.random.default_rng(7)
    img, truth = draw_cameras(rng, 2)
    while {b.label for b in truth} != set(SHAPES):
        img, truth = draw_cameras(rng, 2)
    big = img.resize((img.width * 4, img.height * 4))
    (pred,) = engine.classify([big])
    assert len(pred.cameras) >= 2
    for t in truth:
        scaled = t.scaled(4, 4)
        assert any(iou(c.box, scaled.box) >= 0.3 and c.label == t.label for c in pred.cameras), (
            t,
            pred.cameras,
        )
    out = build_result(pred, engine.info, width=big.width, height=big.height, sha256="0" * 64, phash="0" * 16)
    parsed = ClassificationResult.model_validate(out)
    assert parsed.cameras[0].confidence >= parsed.cameras[-1].confidence
    assert parsed.label == max(pred.cameras, key=lambda c: c.p_target(engine.info.targets)).label
    assert abs(sum(s.score for s in parsed.cameras[0].probabilities) - 1) < 1e-6


def test_fp16_weights_are_kept_only_when_they_find_the_same_cameras(  # type: ignore[no-untyped-def]
    detector_run, tmp_path: Path, monkeypatch
) -> None:
    import onnx
    from onnx import numpy_helper

    import model.export as export
    from serve.engine import Engine

    data, result = detector_run
    full, half = tmp_path / "full.onnx", tmp_path / "half.onnx"
    export.export_onnx(result.checkpoint, full)
    report = export.export_onnx(result.checkpoint, half, fp16=True, evaluation=data)
    assert report.precision == "fp16-weights" and report.agreement >= 0.99 and report.n_photos > 0
    assert half.stat().st_size < 0.7 * full.stat().st_size  # tiny model: small tensors stay fp32
    assert Engine.load(half).info.precision == "fp16-weights"

    halve = export.fp16_weights

    def damaged(proto: onnx.ModelProto) -> onnx.ModelProto:  # a reduction that loses the cameras
        out = halve(proto)
        for init in out.graph.initializer:
            if init.name.endswith("__fp16"):
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 0.5, init.name))
        return out

    monkeypatch.setattr(export, "fp16_weights", damaged)
    refused = tmp_path / "refused.onnx"
    with pytest.raises(export.QuantizationRefused, match="fp32 model's cameras"):
        export.export_onnx(result.checkpoint, refused, fp16=True, evaluation=data)
    assert not refused.exists()


def test_validation_size_buckets_use_each_photos_own_width(tmp_path: Path) -> None:
    """A camera 20 % as wide as a portrait photo is a "> 15 %" camera, though the letterboxed input
    is twice as wide as the photo in it (the buckets used to divide by the input's width)."""
    from PIL import Image

    from data.boxes import LabeledBox, format_boxes
    from data.labels import load_labels
    from data.manifest import Manifest, Record, write_manifest
    from data.preprocess import ResizeRule
    from training.config import resolve_config
    from training.detect import RawPeaks, calibrate_detector
    from training.detection import DetectionDataset, collate

    Image.new("RGB", (300, 600), (90, 90, 90)).save(tmp_path / "portrait.jpg")
    box = LabeledBox("huawei_ipc6625_z30", (120.0, 200.0, 180.0, 260.0))  # 60 px of 300
    record = Record("portrait.jpg", box.label, "g", split="val", extra={"boxes": format_boxes([box])})
    manifest = read_manifest(write_manifest(Manifest(tmp_path, [record]), tmp_path / "manifest.csv"))
    labels = load_labels()
    ds = DetectionDataset(manifest, manifest.records, labels, ResizeRule(64, "letterbox"))
    assert ds.photo_widths() == [32.0]
    _, items = collate([ds[0]])
    (found,) = items[0][0].numpy()  # the true box in input pixels, found exactly
    logits = np.full((1, len(labels.cameras)), -5.0, dtype=np.float32)
    logits[0, labels.cameras.index(box.label)] = 5.0
    peaks = [RawPeaks(np.array([0.9], dtype=np.float32), logits, found[None])]
    cfg = resolve_config(None, **{**DETECTOR_OVERRIDES, "det_false_per_photo": 0.1})
    _, _, figures = calibrate_detector(peaks, items, labels, cfg, ds.photo_widths())
    assert figures["val_recall_by_size"][">15%"] == [1, 1]


def test_box_windows_show_a_camera_in_more_training_windows(tmp_path: Path) -> None:
    """With ``det_box_windows`` 1 every window of a photo with a camera holds one; random windows
    a quarter of the input wide often miss a small camera."""
    from data.labels import load_labels
    from data.preprocess import ResizeRule
    from training.detection import DetectionDataset

    manifest = read_manifest(make_box_manifest(tmp_path, n=30))
    with_camera = [r for r in manifest.records if r.extra.get("boxes")]
    rule = ResizeRule(256, "letterbox")

    def windows_with_a_box(share: float) -> int:
        ds = DetectionDataset(manifest, with_camera, load_labels(), rule, crop=64, seed=3, box_windows=share)
        return sum(len(ds[i][1]) > 0 for i in range(len(ds)) for _ in range(3))

    total = 3 * len(with_camera)
    assert windows_with_a_box(1.0) == total
    assert windows_with_a_box(0.0) < 0.6 * total
