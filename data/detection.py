"""Reading a camera detector's outputs, and the rule that turns cameras into a photo verdict.

Torch-free (numpy only): the server, ``camid predict`` and evaluation all call these.

A detector (``model/detector.py``) gives, per cell of its stride-8 grid, a camera probability
``s`` (local peaks only), class logits over the camera classes and a box. A camera is a peak
with ``s >= thresholds["camera"]``; its probabilities over *all* classes are ``s * q_k`` for each
camera class ``k`` (``q = softmax(class logits / temperature)``) and ``1 - s`` for the no-camera
class, so they sum to 1; its label is the most probable camera class and its confidence that
class's probability.

**The photo verdict** (``photo_verdict``): the decisive camera is the one with the highest summed
target probability (ties: the higher confidence). With at least one camera, the photo's label,
confidence and probabilities are the decisive camera's; with none, the label is the no-camera
class and the probabilities are those of the strongest peak below the threshold (so a near miss
still shows in the target probability). ``decision``: ``flag`` when the label is a target and
the confidence reaches ``thresholds["flag"]``; ``reject`` when the summed target probability is at
most ``thresholds["reject"]``; ``review`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from data.decision import Decision, decide, scores_json, softmax
from data.labels import LabelSet

Box = tuple[float, float, float, float]
DETECTOR_OUTPUTS = ("objectness", "scores", "class_logits", "boxes")


@dataclass(frozen=True)
class Camera:
    """One camera found: box in photo pixels, label, confidence, probabilities over all classes."""

    box: Box
    label: str
    confidence: float
    probabilities: tuple[tuple[str, float], ...]  # sorted high to low

    def p_target(self, targets: Sequence[str]) -> float:
        return float(sum(p for name, p in self.probabilities if name in targets))

    def to_json(self) -> dict[str, object]:
        return {
            "box": [round(v, 1) for v in self.box],
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": scores_json(self.probabilities),
        }


@dataclass(frozen=True)
class PhotoVerdict:
    """The photo-level fields derived from its cameras."""

    label: str
    confidence: float
    decision: Decision
    probabilities: tuple[tuple[str, float], ...]


def peak_probabilities(
    score: float, class_logits: np.ndarray, labels: LabelSet, temperature: float
) -> np.ndarray:
    """Probabilities over all classes (label-set order) of one peak: ``s * q_k`` and ``1 - s``."""
    q = softmax(np.asarray(class_logits, dtype=np.float64), temperature)
    probs = np.zeros(len(labels))
    for k, name in enumerate(labels.cameras):
        probs[labels.index(name)] = score * q[k]
    probs[labels.index(labels.negative)] = 1.0 - score
    return probs


def _ranked(probs: np.ndarray, labels: LabelSet) -> tuple[tuple[str, float], ...]:
    order = np.argsort(-probs, kind="stable")
    return tuple((labels.names[i], float(probs[i])) for i in order)


def decode_cameras(
    scores: np.ndarray,
    class_logits: np.ndarray,
    boxes: np.ndarray,
    *,
    labels: LabelSet,
    temperature: float,
    threshold: float,
    to_photo: Callable[[Box], Box],
    max_cameras: int = 20,
) -> tuple[list[Camera], Camera | None]:
    """The cameras of one photo (``scores [M]``, ``class_logits [M,K]``, ``boxes [M,4]`` in input
    pixels), most confident first, and the strongest peak below ``threshold`` (or None)."""
    order = np.argsort(-scores, kind="stable")[: max_cameras + 1]
    cam_idx = [labels.index(n) for n in labels.cameras]
    cameras: list[Camera] = []
    best_miss: Camera | None = None
    for i in order:
        s = float(scores[i])
        if s <= 0.0:
            break
        probs = peak_probabilities(s, class_logits[i], labels, temperature)
        top = max(cam_idx, key=lambda j: probs[j])
        box = to_photo((float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]), float(boxes[i, 3])))
        cam = Camera(box, labels.names[top], float(probs[top]), _ranked(probs, labels))
        if s >= threshold and len(cameras) < max_cameras:
            cameras.append(cam)
        elif s < threshold and best_miss is None:
            best_miss = cam
    cameras.sort(key=lambda c: -c.confidence)
    return cameras, best_miss


def photo_verdict(
    cameras: Sequence[Camera],
    best_miss: Camera | None,
    labels: LabelSet,
    thresholds: Mapping[str, float] | None = None,
) -> PhotoVerdict:
    """The documented rule (module docstring) from a photo's cameras to its verdict; the
    decision itself is :func:`data.decision.decide` with the decisive camera's label."""
    th = thresholds or {"flag": 1.0, "reject": 0.0}
    targets = labels.targets
    if cameras:
        decisive = max(cameras, key=lambda c: (c.p_target(targets), c.confidence))
        label, confidence, probabilities = decisive.label, decisive.confidence, decisive.probabilities
    else:
        label = labels.negative
        if best_miss is not None:
            probabilities = best_miss.probabilities
        else:
            probabilities = tuple((n, 1.0 if n == label else 0.0) for n in labels.names)
        confidence = dict(probabilities)[label]
    by_name = dict(probabilities)
    vector = np.array([by_name[n] for n in labels.names])
    decision = decide(vector, labels.names, targets, th, label=label)
    return PhotoVerdict(label, confidence, decision, probabilities)
