"""Temperature scaling and the flag / reject thresholds, fitted on validation outputs.

Numpy only: the same functions serve the torch checkpoint and the exported ONNX model.
The decision rule itself is :func:`data.decision.decide`, shared with the server.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from data.decision import decide, softmax

log = logging.getLogger(__name__)

NEVER_FLAG = 1.0  # flag (practically) nothing automatically


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(
    logits: np.ndarray, y: np.ndarray, lo: float = 0.05, hi: float = 20.0, iters: int = 80
) -> float:
    """Temperature minimising validation NLL: golden-section search on log T in [lo, hi]."""
    if len(y) == 0:
        log.warning("no validation photos: temperature left at 1.0")
        return 1.0
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return float(math.exp((a + b) / 2))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin mean confidence, accuracy and count of the top-class prediction."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> ReliabilityBins:
    """Bin photos by top-class confidence (equal-width bins on [0, 1])."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    safe = np.maximum(count, 1)
    return ReliabilityBins(
        edges=edges,
        confidence=np.bincount(idx, weights=conf, minlength=n_bins) / safe,
        accuracy=np.bincount(idx, weights=correct, minlength=n_bins) / safe,
        count=count,
    )


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over confidence bins."""
    if len(y) == 0:
        return float("nan")
    b = reliability_bins(probs, y, n_bins)
    return float((b.count * np.abs(b.accuracy - b.confidence)).sum() / b.count.sum())


def target_mask(labels: Sequence[str], targets: Collection[str]) -> np.ndarray:
    """Boolean vector over classes: True for target classes."""
    return np.array([name in targets for name in labels], dtype=bool)


def select_flag_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    precision: float = 0.97,
    pred: np.ndarray | None = None,
) -> float:
    """Lowest confidence at which flagged photos (top class a target, confidence >= t) are the
    right class at least ``precision`` of the time on validation; ``NEVER_FLAG`` if none is.
    ``pred``: each photo's label when it is not the most probable class (a detector's verdict)."""
    is_target = target_mask(labels, targets)
    pred = probs.argmax(axis=1) if pred is None else np.asarray(pred)
    conf = probs[np.arange(len(probs)), pred]
    cand = np.flatnonzero(is_target[pred])
    if len(cand) == 0:
        log.warning("no validation photo is predicted as a target class: flag threshold = never")
        return NEVER_FLAG
    order = cand[np.argsort(-conf[cand], kind="stable")]
    hits = np.cumsum(pred[order] == y[order])
    prec = hits / np.arange(1, len(order) + 1)
    # a threshold must include every photo with the same confidence: use the last of each run
    c_sorted = conf[order]
    last_of_run = np.r_[c_sorted[1:] != c_sorted[:-1], True]
    ok = np.flatnonzero((prec >= precision) & last_of_run)
    if len(ok) == 0:
        log.warning(
            "target precision %.3f is never reached on validation (best %.3f): "
            "flag threshold = never; the model will not flag automatically",
            precision,
            float(prec.max()),
        )
        return NEVER_FLAG
    return float(c_sorted[ok.max()])


def select_reject_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    max_rejected: float = 0.02,
) -> float:
    """Largest summed-target-probability threshold that rejects at most ``max_rejected`` of the
    validation photos whose true class is a target (reject means p_target <= threshold)."""
    is_target = target_mask(labels, targets)
    p_target = np.sort(probs[:, is_target].sum(axis=1)[is_target[y]])
    if len(p_target) == 0:
        log.warning("no target-class photo in validation: reject threshold = 0 (reject nothing)")
        return 0.0
    k = int(math.floor(max_rejected * len(p_target) + 1e-9))  # photos we may reject
    if k >= len(p_target):
        return 1.0
    return float(max(0.0, np.nextafter(p_target[k], -np.inf)))


def decide_all(
    probs: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    thresholds: dict[str, float],
) -> list[str]:
    """The server's decision (:func:`data.decision.decide`) for every row of ``probs``."""
    return [decide(p, labels, targets, thresholds) for p in probs]


@dataclass(frozen=True)
class Calibration:
    """What a run stores in its checkpoint: temperature and decision thresholds."""

    temperature: float
    thresholds: dict[str, float]
    ece_before: float
    ece_after: float


def calibrate(
    logits: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    flag_precision: float = 0.97,
    max_rejected: float = 0.02,
) -> Calibration:
    """Fit the temperature, then both thresholds on the temperature-scaled validation outputs."""
    t = fit_temperature(logits, y)
    probs_raw, probs = softmax(logits, 1.0), softmax(logits, t)
    thresholds = {
        "flag": select_flag_threshold(probs, y, labels, targets, flag_precision),
        "reject": select_reject_threshold(probs, y, labels, targets, max_rejected),
    }
    return Calibration(
        temperature=t,
        thresholds=thresholds,
        ece_before=expected_calibration_error(probs_raw, y),
        ece_after=expected_calibration_error(probs, y),
    )
