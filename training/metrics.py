"""Classification and decision metrics with group-aware bootstrap intervals (numpy only)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

MetricFn = Callable[[np.ndarray], dict[str, float]]


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.maximum(b, 1), np.nan)


def per_class_prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class (NaN where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    precision = _safe_div(tp, cm.sum(axis=0))
    recall = _safe_div(tp, cm.sum(axis=1))
    with np.errstate(invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f1)
    return precision, recall, f1


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in ``y`` (classes absent from ``y`` are skipped)."""
    cm = confusion_matrix(y, pred, n_classes)
    p, r, _ = per_class_prf(cm)
    present = cm.sum(axis=1) > 0
    p = np.nan_to_num(p)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return float(f1[present].mean()) if present.any() else float("nan")


def classification_metrics(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Flat dict: accuracy, macro_f1 and ``precision/NAME``, ``recall/NAME``, ``f1/NAME``."""
    cm = confusion_matrix(y, pred, len(labels))
    p, r, f = per_class_prf(cm)
    out = {"accuracy": float((y == pred).mean()) if len(y) else float("nan")}
    out["macro_f1"] = macro_f1(y, pred, len(labels))
    for i, name in enumerate(labels):
        out[f"precision/{name}"] = float(p[i])
        out[f"recall/{name}"] = float(r[i])
        out[f"f1/{name}"] = float(f[i])
    return out


def decision_metrics(
    decisions: Sequence[str],
    y: np.ndarray,
    pred: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    camera: Sequence[bool],
) -> dict[str, float]:
    """Flag precision (right target class), automatic share (flag or reject), target recall of
    flags, and camera-vs-no-camera recall/specificity (``camera[i]``: class i shows a camera)."""
    d = np.asarray(decisions)
    is_target = np.array([n in targets for n in labels])
    flagged = d == "flag"
    camera_classes = np.asarray(camera, dtype=bool)
    true_cam, pred_cam = camera_classes[y], camera_classes[pred]
    true_target = is_target[y]
    return {
        "flag_precision": float((pred[flagged] == y[flagged]).mean()) if flagged.any() else float("nan"),
        "flag_share": float(flagged.mean()) if len(d) else float("nan"),
        "reject_share": float((d == "reject").mean()) if len(d) else float("nan"),
        "auto_share": float(((d == "flag") | (d == "reject")).mean()) if len(d) else float("nan"),
        "target_flag_recall": float(flagged[true_target].mean()) if true_target.any() else float("nan"),
        "target_rejected": float((d == "reject")[true_target].mean()) if true_target.any() else float("nan"),
        "camera_recall": float(pred_cam[true_cam].mean()) if true_cam.any() else float("nan"),
        "camera_specificity": float((~pred_cam)[~true_cam].mean()) if (~true_cam).any() else float("nan"),
    }


def bootstrap_intervals(
    metric: MetricFn,
    n: int,
    groups: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every value ``metric(indices)`` returns, resampling whole groups
    (photos of one camera together) when ``groups`` is given, else single photos."""
    rng = np.random.default_rng(seed)
    if groups is None:
        units = [np.array([i]) for i in range(n)]
    else:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        units = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
    samples: dict[str, list[float]] = {}
    for _ in tqdm(range(n_boot), desc="bootstrap", leave=False, disable=n_boot < 50):
        pick = rng.integers(0, len(units), size=len(units))
        idx = np.concatenate([units[i] for i in pick])
        for k, v in metric(idx).items():
            samples.setdefault(k, []).append(v)
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out = {}
    for k, vals in samples.items():
        arr = np.asarray(vals, dtype=np.float64)
        arr = arr[~np.isnan(arr)]
        nan = float("nan")
        out[k] = (float(np.percentile(arr, lo)), float(np.percentile(arr, hi))) if len(arr) else (nan, nan)
    return out


def with_intervals(point: dict[str, float], intervals: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """``{name: {"value": v, "ci95": [lo, hi]}}`` for JSON."""
    nan = (float("nan"), float("nan"))
    return {k: {"value": v, "ci95": list(intervals.get(k, nan))} for k, v in point.items()}
