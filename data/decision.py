"""Calibrated probabilities and the flag / review / reject decision, shared by evaluation and serving."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import numpy as np

Decision = Literal["flag", "review", "reject"]
DECISIONS: tuple[Decision, ...] = ("flag", "review", "reject")


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled softmax over the last axis, computed stably in float64."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


def scores_json(ranked: Sequence[tuple[str, float]]) -> list[dict[str, object]]:
    """``[{"label", "score"}, ...]``: how every result writes a probability list."""
    return [{"label": name, "score": score} for name, score in ranked]


def decide(
    probs: np.ndarray,
    labels: Sequence[str],
    targets: Collection[str],
    thresholds: Mapping[str, float],
    label: str | None = None,
) -> Decision:
    """Decide what happens to one photo given its calibrated class probabilities.

    ``label``: the photo's label when it is not simply the most probable class (a detector's
    decisive camera, ``data.detection.photo_verdict``); default the top class.
    ``flag``: that label is a target camera and its probability reaches ``thresholds["flag"]``
    (a threshold of 1.0 or more means "never flag": calibration found no safe level);
    ``reject``: the summed probability of all target classes is at most ``thresholds["reject"]``;
    ``review``: everything in between goes to a moderator.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(labels),):
        raise ValueError(f"expected {len(labels)} probabilities, got shape {p.shape}")
    top = int(p.argmax()) if label is None else list(labels).index(label)
    flag_at = thresholds["flag"]
    if labels[top] in targets and flag_at < 1.0 and p[top] >= flag_at:
        return "flag"
    p_target = float(sum(p[i] for i, name in enumerate(labels) if name in targets))
    if p_target <= thresholds["reject"]:
        return "reject"
    return "review"
