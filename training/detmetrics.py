"""Detection metrics (numpy): AP50 per class, recall at a fixed number of false cameras per
photo, and every figure bucketed by camera size (box width as a fraction of the photo width)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from data.boxes import SIZE_BUCKETS, iou, size_bucket

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Found:
    """One predicted camera: box, label, score (the detector's camera probability)."""

    box: Box
    label: str
    score: float


@dataclass(frozen=True)
class PhotoTruth:
    """A photo's true camera boxes (labels) and its width in pixels (for size buckets)."""

    boxes: tuple[tuple[Box, str], ...]
    width: float


def match(found: Sequence[Found], truth: PhotoTruth, iou_min: float, by_label: bool) -> list[int]:
    """Greedy matching, highest score first: for each prediction the index of the true box it
    matches (IoU >= ``iou_min``, same label if ``by_label``), or -1 (a false camera)."""
    taken: set[int] = set()
    out = [-1] * len(found)
    for i in sorted(range(len(found)), key=lambda k: -found[k].score):
        best, best_iou = -1, iou_min
        for j, (box, label) in enumerate(truth.boxes):
            if j in taken or (by_label and label != found[i].label):
                continue
            v = iou(found[i].box, box)
            if v >= best_iou:
                best, best_iou = j, v
        if best >= 0:
            taken.add(best)
            out[i] = best
    return out


def average_precision(scores: np.ndarray, hits: np.ndarray, n_true: int) -> float:
    """Area under the interpolated precision-recall curve (VOC style, all points)."""
    if n_true == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_true
    precision = tp / np.maximum(tp + fp, 1)
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))


def ap_per_class(
    found: Sequence[Sequence[Found]],
    truth: Sequence[PhotoTruth],
    classes: Sequence[str],
    iou_min: float = 0.5,
) -> dict[str, float]:
    """AP at IoU >= ``iou_min`` for each class (NaN where a class has no true box)."""
    out = {}
    for c in classes:
        scores, hits, n_true = [], [], 0
        for f, t in zip(found, truth, strict=True):
            fc = [x for x in f if x.label == c]
            tc = PhotoTruth(tuple(b for b in t.boxes if b[1] == c), t.width)
            m = match(fc, tc, iou_min, by_label=True)
            scores += [x.score for x in fc]
            hits += [j >= 0 for j in m]
            n_true += len(tc.boxes)
        out[c] = average_precision(np.array(scores), np.array(hits, dtype=bool), n_true)
    return out


@dataclass(frozen=True)
class RecallAtFalse:
    """Class-agnostic recall at the lowest score threshold keeping false cameras per photo
    at or under ``false_per_photo``, with recall per size bucket at that threshold."""

    threshold: float
    recall: float
    false_per_photo: float
    found: int
    total: int
    by_bucket: dict[str, tuple[int, int]]  # bucket -> (found, total)


def recall_at_false(
    found: Sequence[Sequence[Found]],
    truth: Sequence[PhotoTruth],
    false_per_photo: float = 0.1,
    iou_min: float = 0.5,
    photos: Sequence[bool] | None = None,
) -> RecallAtFalse:
    """Recall (any camera class) at <= ``false_per_photo`` false cameras per photo, counted over
    ``photos`` (a mask; default all photos; e.g. only photos without a camera)."""
    rows = []  # (score, photo, truth index or -1)
    for p, (f, t) in enumerate(zip(found, truth, strict=True)):
        for x, j in zip(f, match(f, t, iou_min, by_label=False), strict=True):
            rows.append((x.score, p, j))
    count_fp = np.ones(len(truth), dtype=bool) if photos is None else np.asarray(photos, dtype=bool)
    n_photos = max(1, int(count_fp.sum()))
    total = sum(len(t.boxes) for t in truth)
    thresholds = sorted({r[0] for r in rows}, reverse=True)
    best = 1.0 + 1e-9
    for th in thresholds:
        fp = sum(1 for s, p, j in rows if s >= th and j < 0 and count_fp[p])
        if fp / n_photos > false_per_photo:
            break
        best = th
    hits = {(p, j) for s, p, j in rows if s >= best and j >= 0}
    buckets = {name: [0, 0] for name, _, _ in SIZE_BUCKETS}
    for p, t in enumerate(truth):
        for j, (box, _) in enumerate(t.boxes):
            b = size_bucket(box[2] - box[0], t.width)
            buckets[b][1] += 1
            buckets[b][0] += int((p, j) in hits)
    fp = sum(1 for s, p, j in rows if s >= best and j < 0 and count_fp[p])
    return RecallAtFalse(
        threshold=float(min(best, 1.0)),
        recall=len(hits) / total if total else float("nan"),
        false_per_photo=fp / n_photos,
        found=len(hits),
        total=total,
        by_bucket={k: (v[0], v[1]) for k, v in buckets.items()},
    )
