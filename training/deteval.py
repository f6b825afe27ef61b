"""Evaluate a camera detector on a manifest split and say where it fails.

:func:`evaluate_cameras` scores any *finder* (a function from photo paths to the cameras it
found and its photo verdicts, see :class:`PhotoFinding`), so benchmarks can compare detectors that
are not camid models; :func:`engine_finder` runs an exported ONNX detector exactly as the server
does (a look-then-zoom pair too). The truth of a photo is its ``boxes``: camera-class boxes are
cameras to find; boxes of the no-camera class are look-alikes (street lights, handheld cameras),
where a prediction is a false camera and which count nothing else. Camera photos without camera
boxes ("unboxed") count in the photo-level metrics only.

Figures (``metrics.json``): AP per camera class, class-agnostic recall at <= ``false_per_photo``
false cameras per camera-free photo (and per photo), both from the finder's candidates; recall and
false cameras at the finder's own threshold (what users get), per size bucket; photo-level camera
recall and specificity, flag precision and recall, accuracy, with group-bootstrap 95 % intervals.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from data.boxes import SIZE_BUCKETS, LabeledBox, iou, record_boxes, size_bucket
from data.detection import Camera
from data.images import ImageError, probe_image
from data.labels import LabelSet
from data.manifest import Manifest, Record, manifest_hash, read_manifest
from training.detmetrics import Found, PhotoTruth, RecallAtFalse, ap_per_class, match, recall_at_false
from training.metrics import bootstrap_intervals, with_intervals

if TYPE_CHECKING:
    from serve.engine import Engine, Prediction

log = logging.getLogger(__name__)

CANDIDATE_THRESHOLD = 0.02  # peaks kept for AP and recall-at-false (as training.detect.LOW_THRESHOLD)
NEARBY_IOU = 0.1  # a candidate this close to a missed camera is shown as its near miss


@dataclass(frozen=True)
class PhotoFinding:
    """What a finder says about one photo.

    ``cameras``: what a user gets (at the finder's own threshold); ``candidates``: also the weaker
    ones, for AP and recall-at-false curves (None: ``cameras`` only); ``size``: the photo's upright
    ``(width, height)`` when the finder knows it (else it is probed).
    """

    cameras: tuple[Camera, ...]
    label: str
    confidence: float
    decision: str
    candidates: tuple[Camera, ...] | None = None
    size: tuple[int, int] | None = None

    @property
    def all_candidates(self) -> tuple[Camera, ...]:
        return self.cameras if self.candidates is None else self.candidates


Finder = Callable[[Sequence[Path]], list[PhotoFinding]]


def camera_score(camera: Camera, negative: str) -> float:
    """A camera's probability of being a camera at all (``1 - p(no camera)``; else its confidence)."""
    probs = dict(camera.probabilities)
    return 1.0 - probs[negative] if negative in probs else camera.confidence


def finding_of(prediction: Prediction, size: tuple[int, int]) -> PhotoFinding:
    """A :class:`PhotoFinding` from the engine's prediction (with its low-threshold candidates)."""
    return PhotoFinding(
        tuple(prediction.cameras),
        prediction.label,
        prediction.confidence,
        str(prediction.decision),
        prediction.candidates,
        size,
    )


def engine_finder(
    engine: Engine, batch_size: int = 8, workers: int | None = None, candidates: bool = True
) -> Finder:
    """A finder running an exported detector as ``camid predict`` does: each photo decoded by
    :func:`serve.photos.decode_photo` at ``engine.min_side`` (JPEG draft), classified with its
    original size so that boxes are in its pixels. ``candidates``: also decode the same model
    outputs with the camera threshold lowered to :data:`CANDIDATE_THRESHOLD`, for AP and
    recall-at-false (the served cameras and verdicts stay the engine's own, bit for bit)."""
    from serve.photos import decode_photo

    info = engine.info
    if info.task != "detect":
        raise ValueError(f"{engine.path}: a photo classifier, not a camera detector")
    low_th = min(CANDIDATE_THRESHOLD, info.thresholds["camera"]) if candidates else None
    min_side = engine.min_side

    def decode(path: Path) -> Any:
        try:
            return decode_photo(path.read_bytes(), min_side=min_side)
        except ImageError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def find(paths: Sequence[Path]) -> list[PhotoFinding]:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            photos = list(pool.map(decode, paths))
        images, sizes = [p.image for p in photos], [(p.width, p.height) for p in photos]
        served = engine.classify(images, batch_size=batch_size, sizes=sizes, candidate_threshold=low_th)
        return [finding_of(p, s) for p, s in zip(served, sizes, strict=True)]

    return find


@dataclass(frozen=True)
class PhotoEval:
    """One photo: its truth, what the finder said, and which true camera each served camera found."""

    path: Path
    record: Record
    width: int
    height: int
    truth: tuple[LabeledBox, ...]  # camera boxes
    lookalikes: tuple[LabeledBox, ...]  # boxes of the no-camera class
    finding: PhotoFinding
    matched: tuple[int, ...]  # per served camera: index into truth (class-agnostic), or -1
    unboxed: bool  # a camera photo without camera boxes: photo-level metrics only
    camera_free: bool  # no camera in the photo (label and boxes agree)

    @property
    def missed(self) -> list[int]:
        """Indices of the true cameras no served camera found (none for unboxed photos)."""
        hit = set(self.matched)
        return [j for j in range(len(self.truth)) if j not in hit]


@dataclass
class DetEvaluation:
    """What :func:`evaluate_cameras` produced (``out_dir`` once written)."""

    metrics: dict[str, Any]
    photos: list[PhotoEval]
    labels: LabelSet
    out_dir: Path | None = None


def _truth(record: Record, labels: LabelSet) -> tuple[list[LabeledBox], list[LabeledBox]]:
    boxes = record_boxes(record)
    unknown = sorted({b.label for b in boxes} - set(labels.names))
    if unknown:
        raise ValueError(
            f"{record.path}: box label(s) {', '.join(unknown)} unknown to the model "
            f"(model labels: {', '.join(labels.names)}); fix the boxes column or retrain"
        )
    cameras = [b for b in boxes if b.label in labels.cameras]
    return cameras, [b for b in boxes if b.label not in labels.cameras]


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _run_finder(find: Finder, paths: Sequence[Path], chunk: int) -> list[PhotoFinding]:
    out: list[PhotoFinding] = []
    for part in tqdm(list(_chunks(paths, chunk)), desc="evaluate (cameras)", unit="batch"):
        got = find(part)
        if len(got) != len(part):
            raise ValueError(f"the finder returned {len(got)} results for {len(part)} photos")
        out.extend(got)
    return out


def _photo_eval(
    path: Path, record: Record, finding: PhotoFinding, labels: LabelSet, iou_min: float
) -> PhotoEval:
    truth, lookalikes = _truth(record, labels)
    width, height = finding.size or _probe(path)
    unboxed = record.label in labels.cameras and not truth
    t = PhotoTruth(tuple((b.box, "camera") for b in truth), width)
    found = [Found(c.box, "camera", camera_score(c, labels.negative)) for c in finding.cameras]
    matched = tuple(match(found, t, iou_min, by_label=False)) if not unboxed else (-1,) * len(found)
    camera_free = not truth and record.label not in labels.cameras
    return PhotoEval(
        path, record, width, height, tuple(truth), tuple(lookalikes), finding, matched, unboxed, camera_free
    )


def _probe(path: Path) -> tuple[int, int]:
    try:
        info = probe_image(path)
    except ImageError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return info.width, info.height


def _bucket_of(box: LabeledBox | Camera, width: int) -> str:
    return size_bucket(box.box[2] - box.box[0], width)


def _per_photo_counts(photos: Sequence[PhotoEval], labels: LabelSet) -> dict[str, np.ndarray]:
    """Arrays over photos from which every bootstrapped metric is a few sums."""
    cams = set(labels.cameras)
    n = len(photos)
    c: dict[str, np.ndarray] = {
        k: np.zeros(n) for k in ("true_cams", "found", "found_label", "false", "free", "boxed")
    }
    true_cam, pred_cam, correct, flagged, target = (np.zeros(n, dtype=bool) for _ in range(5))
    for i, p in enumerate(photos):
        f = p.finding
        true_cam[i], pred_cam[i] = p.record.label in cams, f.label in cams
        correct[i], flagged[i] = f.label == p.record.label, f.decision == "flag"
        target[i] = p.record.label in labels.targets
        if p.unboxed:
            continue
        c["boxed"][i] = 1
        c["free"][i] = p.camera_free
        c["true_cams"][i] = len(p.truth)
        hits = [(cam, j) for cam, j in zip(f.cameras, p.matched, strict=True) if j >= 0]
        c["found"][i] = len(hits)
        c["found_label"][i] = sum(cam.label == p.truth[j].label for cam, j in hits)
        c["false"][i] = len(f.cameras) - len(hits)
    c.update(true_cam=true_cam, pred_cam=pred_cam, correct=correct, flagged=flagged, target=target)
    return c


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _metric_fn(c: dict[str, np.ndarray]) -> Callable[[np.ndarray], dict[str, float]]:
    def metric(idx: np.ndarray) -> dict[str, float]:
        s = {k: v[idx] for k, v in c.items()}
        tc, pc, fl = s["true_cam"], s["pred_cam"], s["flagged"]
        free = s["free"] > 0
        return {
            "camera_recall": _ratio(float((pc & tc).sum()), float(tc.sum())),
            "camera_specificity": _ratio(float((~pc & ~tc).sum()), float((~tc).sum())),
            "flag_precision": _ratio(float((s["correct"] & fl).sum()), float(fl.sum())),
            "flag_recall": _ratio(float((fl & s["target"]).sum()), float(s["target"].sum())),
            "accuracy": _ratio(float(s["correct"].sum()), float(len(idx))),
            "box_recall": _ratio(float(s["found"].sum()), float(s["true_cams"].sum())),
            "box_recall_right_label": _ratio(float(s["found_label"].sum()), float(s["true_cams"].sum())),
            "false_cameras_per_camera_free_photo": _ratio(float(s["false"][free].sum()), float(free.sum())),
            "false_cameras_per_photo": _ratio(float(s["false"].sum()), float(s["boxed"].sum())),
        }

    return metric


def _buckets(found: int | float, total: int | float) -> dict[str, Any]:
    return {"found": int(found), "total": int(total), "recall": _ratio(found, total)}


def _at_threshold(photos: Sequence[PhotoEval], labels: LabelSet, iou_min: float) -> dict[str, Any]:
    """Recall and false cameras per size bucket of the served cameras (no re-thresholding)."""
    by = {name: {"found": 0, "total": 0, "false_cameras": 0} for name, _, _ in SIZE_BUCKETS}
    on_lookalikes = 0
    for p in photos:
        if p.unboxed:
            continue
        hit = set(p.matched)
        for j, b in enumerate(p.truth):
            k = _bucket_of(b, p.width)
            by[k]["total"] += 1
            by[k]["found"] += int(j in hit)
        for cam, j in zip(p.finding.cameras, p.matched, strict=True):
            if j < 0:
                by[_bucket_of(cam, p.width)]["false_cameras"] += 1
                on_lookalikes += any(iou(cam.box, b.box) >= iou_min for b in p.lookalikes)
    return {
        "by_bucket": {k: {**v, "recall": _ratio(v["found"], v["total"])} for k, v in by.items()},
        "false_cameras": sum(v["false_cameras"] for v in by.values()),
        "false_cameras_on_lookalikes": on_lookalikes,
        "note": "false cameras are bucketed by their own width; cameras on unboxed photos are not judged",
    }


def _recall_json(r: RecallAtFalse) -> dict[str, Any]:
    return {
        "threshold": r.threshold,
        "recall": r.recall,
        "false_per_photo": r.false_per_photo,
        "found": r.found,
        "total": r.total,
        "by_bucket": {k: _buckets(f, t) for k, (f, t) in r.by_bucket.items()},
    }


def _curve_metrics(
    photos: Sequence[PhotoEval], labels: LabelSet, iou_min: float, false_per_photo: float
) -> dict[str, Any]:
    """AP per class and recall at false cameras per photo, from the candidates of boxed photos."""
    boxed = [p for p in photos if not p.unboxed]
    neg = labels.negative
    found = [[Found(c.box, c.label, camera_score(c, neg)) for c in p.finding.all_candidates] for p in boxed]
    truth = [PhotoTruth(tuple((b.box, b.label) for b in p.truth), p.width) for p in boxed]
    agnostic = [[Found(f.box, "camera", f.score) for f in fs] for fs in found]
    agnostic_truth = [PhotoTruth(tuple((b, "camera") for b, _ in t.boxes), t.width) for t in truth]
    free = [p.camera_free for p in boxed]
    out: dict[str, Any] = {
        "ap_per_class": ap_per_class(found, truth, labels.cameras, iou_min),
        "ap_any_camera": ap_per_class(agnostic, agnostic_truth, ["camera"], iou_min)["camera"],
        "recall_at_false": {
            "all_photos": _recall_json(recall_at_false(agnostic, agnostic_truth, false_per_photo, iou_min)),
        },
    }
    if any(free):
        r = recall_at_false(agnostic, agnostic_truth, false_per_photo, iou_min, photos=free)
        out["recall_at_false"]["camera_free_photos"] = _recall_json(r)
    else:
        log.warning("no camera-free photos: recall at false cameras per camera-free photo is undefined")
        out["recall_at_false"]["camera_free_photos"] = None
    return out


def _counts(photos: Sequence[PhotoEval], labels: LabelSet) -> dict[str, Any]:
    per_class: dict[str, int] = {}
    cams_per_class: dict[str, int] = dict.fromkeys(labels.cameras, 0)
    for p in photos:
        per_class[p.record.label] = per_class.get(p.record.label, 0) + 1
        for b in p.truth:
            cams_per_class[b.label] += 1
    return {
        "photos": len(photos),
        "photos_with_camera_boxes": sum(bool(p.truth) for p in photos),
        "camera_free_photos": sum(p.camera_free for p in photos),
        "unboxed_camera_photos": sum(p.unboxed for p in photos),
        "cameras": sum(len(p.truth) for p in photos),
        "lookalikes": sum(len(p.lookalikes) for p in photos),
        "photos_per_class": per_class,
        "cameras_per_class": cams_per_class,
    }


def _warn_unboxed(photos: Sequence[PhotoEval]) -> None:
    unboxed = [p for p in photos if p.unboxed]
    if not unboxed:
        return
    if all(not p.truth for p in photos):
        log.warning(
            "no photo has camera boxes: only photo-level metrics are computed (add a boxes column "
            "with `camid data synth`/the importers, or draw boxes in moderation)"
        )
    else:
        log.warning(
            "%d camera photo(s) have no camera boxes (first: %s): counted in photo-level metrics only",
            len(unboxed),
            unboxed[0].record.path,
        )


def evaluate_cameras(
    find: Finder,
    records: Sequence[Record],
    root: str | Path,
    labels: LabelSet,
    *,
    iou_min: float = 0.5,
    false_per_photo: float = 0.1,
    n_boot: int = 1000,
    seed: int = 0,
    chunk: int = 32,
) -> DetEvaluation:
    """Run ``find`` on the photos of ``records`` (paths relative to ``root``) and measure it against
    their boxes: the metrics of the module docstring (NaN where undefined) and one
    :class:`PhotoEval` per photo. Labels of records and boxes must be classes of ``labels``."""
    unknown = sorted({r.label for r in records} - set(labels.names))
    if unknown:
        raise ValueError(
            f"evaluation photos have label(s) {', '.join(unknown)} the model does not know "
            f"(model labels: {', '.join(labels.names)})"
        )
    manifest = Manifest(Path(root), list(records))
    paths = [manifest.resolve(r) for r in records]
    findings = _run_finder(find, paths, chunk)
    photos = [_photo_eval(p, r, f, labels, iou_min) for p, r, f in zip(paths, records, findings, strict=True)]
    _warn_unboxed(photos)
    counts = _per_photo_counts(photos, labels)
    metric = _metric_fn(counts)
    groups = [r.group for r in records]
    grouped = bool(groups) and all(groups)
    intervals = bootstrap_intervals(metric, len(photos), groups if grouped else None, n_boot, seed)
    metrics: dict[str, Any] = {
        "task": "detect",
        "counts": _counts(photos, labels),
        "settings": {"iou_min": iou_min, "false_per_photo": false_per_photo},
        "metrics": with_intervals(metric(np.arange(len(photos))), intervals),
        "at_threshold": _at_threshold(photos, labels, iou_min),
        **_curve_metrics(photos, labels, iou_min, false_per_photo),
        "unboxed_photos": [p.record.path for p in photos if p.unboxed],
        "bootstrap": {
            "resamples": n_boot,
            "unit": "group" if grouped else "photo",
            "n_units": len(set(groups)) if grouped else len(photos),
            "note": "95% percentile intervals; photos of one group (camera/scene) resampled together"
            if grouped
            else "95% percentile intervals over photos (manifest has no groups)",
        },
    }
    return DetEvaluation(metrics, photos, labels)


def photo_json(p: PhotoEval) -> dict[str, Any]:
    """One line of cameras.jsonl: the photo, its truth (with ``found``) and what the finder said."""
    hit = set(p.matched)
    truth = [{**b.to_json(), "found": None if p.unboxed else j in hit} for j, b in enumerate(p.truth)]
    truth += [{**b.to_json(), "lookalike": True} for b in p.lookalikes]
    f = p.finding
    cameras = [
        {**c.to_json(), "matches": j if j >= 0 else None} for c, j in zip(f.cameras, p.matched, strict=True)
    ]
    return {
        "path": str(p.path),
        "group": p.record.group,
        "label": p.record.label,
        "width": p.width,
        "height": p.height,
        "unboxed": p.unboxed,
        "truth": truth,
        "cameras": cameras,
        "verdict": {"label": f.label, "confidence": f.confidence, "decision": f.decision},
    }


def write_outputs(ev: DetEvaluation, out_dir: str | Path, report: bool = True) -> Path:
    """metrics.json, cameras.jsonl and (``report``) report.html in ``out_dir``."""
    from training.detreport import write_detector_report
    from training.evaluate import _nan_to_none

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(_nan_to_none(ev.metrics), indent=2), encoding="utf-8")
    with (out / "cameras.jsonl").open("w", encoding="utf-8") as f:
        for p in ev.photos:
            f.write(json.dumps(_nan_to_none(photo_json(p))) + "\n")
    ev.out_dir = out
    if report:
        write_detector_report(ev, out / "report.html")
    return out


def servable(manifest: Manifest, records: Sequence[Record] | None = None) -> tuple[list[Record], list[str]]:
    """The records (default: all of ``manifest``) whose photo the server takes, and ``PATH: reason``
    for each it refuses from the header (a crop under ``serve.photos.MIN_SIDE`` px): evaluation
    leaves those out, as the server would, and says which."""
    from serve.photos import check_size

    kept, refused = [], []
    for r in manifest.records if records is None else records:
        try:
            check_size(probe_image(manifest.resolve(r)))
            kept.append(r)
        except ImageError as exc:
            refused.append(f"{r.path}: {exc}")
    if refused:
        log.warning("%s: %d photo(s) the server refuses are left out, e.g. %s", manifest.root, len(refused),
                    refused[0])  # fmt: skip
    return kept, refused


def evaluate_detector(
    model: str | Path | Engine,
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = "test",
    iou_min: float = 0.5,
    false_per_photo: float = 0.1,
    n_boot: int = 1000,
    batch_size: int = 8,
    report: bool = True,
) -> DetEvaluation:
    """Evaluate an exported ONNX detector on one split of a manifest; writes metrics.json,
    cameras.jsonl and report.html into ``out_dir``."""
    from serve.engine import Engine
    from training.evaluate import select_records

    engine = model if isinstance(model, Engine) else Engine.load(model)
    manifest = read_manifest(manifest_path)
    records, split_name = select_records(manifest, split)
    records, refused = servable(manifest, records)
    if not records:
        raise ValueError(
            f"{manifest_path}: the server refuses every photo of split {split_name!r}: {refused[0]}"
        )
    ev = evaluate_cameras(
        engine_finder(engine, batch_size), records, manifest.root, engine.info.labels,
        iou_min=iou_min, false_per_photo=false_per_photo, n_boot=n_boot,
    )  # fmt: skip
    ev.metrics["settings"]["camera_threshold"] = engine.info.thresholds["camera"]
    ev.metrics["data"] = {
        "manifest": str(Path(manifest_path).resolve()),
        "manifest_hash": manifest_hash(manifest),
        "split": split_name,
        "refused_by_the_server": refused,
    }
    info = engine.info
    ev.metrics["model"] = {
        "path": str(engine.path.resolve()) if engine.path else "",
        "kind": "onnx",
        "name": info.name,
        "version": info.version,
        "trained_on": dict(info.trained_on),
    }
    write_outputs(ev, out_dir, report)
    log.info("detector evaluation written to %s", out_dir)
    return ev


def _f(v: Any) -> str:
    return "   –" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """A short text table of a detector evaluation (for the CLI)."""
    c, s = metrics["counts"], metrics["settings"]
    fpp = s["false_per_photo"]
    refused = metrics.get("data", {}).get("refused_by_the_server", [])
    lines = [
        *([f"left out {len(refused)} photo(s) the server refuses, e.g. {refused[0]}"] if refused else []),
        f"{c['photos']} photos, {c['cameras']} cameras, {c['camera_free_photos']} camera-free, "
        f"{c['unboxed_camera_photos']} unboxed camera photos; IoU >= {s['iou_min']}",
        f"{'size':8s} {'found@model':>12s} {'recall':>7s} {f'recall@{fpp}FP/free':>18s} "
        f"{f'recall@{fpp}FP/all':>17s} {'false':>6s}",
    ]
    free = (metrics["recall_at_false"].get("camera_free_photos") or {}).get("by_bucket", {})
    every = metrics["recall_at_false"]["all_photos"]["by_bucket"]
    for name, b in metrics["at_threshold"]["by_bucket"].items():
        lines.append(
            f"{name:8s} {b['found']:>5d}/{b['total']:<6d} {_f(b['recall']):>7s} "
            f"{_f(free.get(name, {}).get('recall')):>18s} {_f(every[name]['recall']):>17s} "
            f"{b['false_cameras']:>6d}"
        )
    for name, ap in metrics["ap_per_class"].items():
        lines.append(f"AP{round(100 * s['iou_min'])} {name:28s} {_f(ap)}")
    lines.append(f"AP{round(100 * s['iou_min'])} {'(any camera)':28s} {_f(metrics['ap_any_camera'])}")
    m = metrics["metrics"]
    for k in ("camera_recall", "camera_specificity", "flag_precision", "box_recall",
              "false_cameras_per_camera_free_photo"):  # fmt: skip
        lo, hi = m[k]["ci95"]
        lines.append(f"{k:36s} {_f(m[k]['value'])}  [{_f(lo)}, {_f(hi)}]")
    return lines
