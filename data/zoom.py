"""Look-then-zoom: the detector proposes, a crop classifier decides (torch-free, numpy + Pillow).

The detector looks at the whole photo at its input size and proposes its ``max_proposals``
strongest peaks with a score of at least ``propose``. Each proposal's square crop
(:func:`data.crops.crop_square`, ``context`` times the box's longer side, at least ``min_px``
photo pixels) is cut with :func:`data.crops.cut_crop` from the photo decoded with its shorter side
at least ``decode_side`` pixels, and the crop classifier gives it probabilities over every class.
A proposal is a camera when its summed camera-class probability reaches ``thresholds["camera"]``
of the pair; its label is its most probable camera class and its confidence that probability. Its
box is the detector's, or, when the crop classifier was trained with a box head (``refine``), the
box the crop classifier reads off the crop (:func:`refined_boxes`: it sees the camera at several
times the detector's resolution). A camera whose box overlaps a surer camera's at IoU >=
``DUPLICATE_IOU`` is the same camera seen twice and is dropped. The photo verdict is
:func:`data.detection.photo_verdict`, as for a detector alone. The server (``serve/engine.py``)
and the pair's calibration (``training/zoom.py``) both call these functions, so calibration
measures what the server does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data.boxes import iou
from data.crops import DEFAULT_CONTEXT, DEFAULT_MIN_PX, crop_square, cut_crop
from data.detection import Box, Camera
from data.labels import LabelSet

ZOOM_SUFFIX = ".zoom.onnx"
DEFAULT_PROPOSE = 0.05
DEFAULT_MAX_PROPOSALS = 10
DEFAULT_DECODE_SIDE = 1440
DUPLICATE_IOU = 0.5  # two cameras whose boxes overlap this much are one camera
MAX_LOG_SIZE = 1.0  # a refined box is at most e (2.7) crop sides wide or high


@dataclass(frozen=True)
class ZoomSettings:
    """The geometry and proposal settings a crop classifier was trained and calibrated with."""

    context: float = DEFAULT_CONTEXT
    min_px: float = DEFAULT_MIN_PX
    propose: float = DEFAULT_PROPOSE
    max_proposals: int = DEFAULT_MAX_PROPOSALS
    decode_side: int = DEFAULT_DECODE_SIDE
    refine: bool = False  # the crop classifier also outputs ``box`` (:func:`refined_boxes`)

    def __post_init__(self) -> None:
        if self.context < 1.0 or self.min_px < 1 or self.max_proposals < 1 or self.decode_side < 32:
            raise ValueError(
                f"zoom settings {self.to_json()}: need context >= 1, min_px >= 1, "
                "max_proposals >= 1 and decode_side >= 32"
            )
        if not 0.0 <= self.propose < 1.0:
            raise ValueError(f"zoom propose={self.propose}: use a detector score in [0, 1)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ZoomSettings:
        """The settings stored in a contract's ``crop`` or ``zoom`` mapping (other keys ignored)."""
        known = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in doc.items() if k in known})


def companion_path(detector: Path) -> Path:
    """Where the crop classifier of ``X.onnx`` lives: ``X.zoom.onnx`` beside it."""
    return detector.with_name(detector.stem + ZOOM_SUFFIX)


def top_proposals(scores: np.ndarray, settings: ZoomSettings) -> list[int]:
    """Indices of the ``max_proposals`` strongest peaks scoring at least ``propose`` (and > 0)."""
    order = np.argsort(-scores, kind="stable")[: settings.max_proposals]
    return [int(i) for i in order if scores[i] > 0.0 and scores[i] >= settings.propose]


def crop_squares(boxes: Sequence[Box], photo_size: tuple[int, int], settings: ZoomSettings) -> list[Box]:
    """The crop square (photo pixels) of each of ``boxes`` in a ``photo_size`` photo."""
    width, height = photo_size
    return [crop_square(b, width, height, context=settings.context, min_px=settings.min_px) for b in boxes]


def crop_inputs(
    image: Image.Image,
    boxes: Sequence[Box],
    photo_size: tuple[int, int],
    settings: ZoomSettings,
    size: int,
) -> np.ndarray:
    """The crop classifier's uint8 batch ``[N,3,size,size]`` for ``boxes`` (photo pixels) of a
    ``photo_size`` photo decoded as ``image`` (possibly smaller: JPEG draft)."""
    scale = image.width / photo_size[0]
    crops = []
    for square in crop_squares(boxes, photo_size, settings):
        crops.append(np.asarray(cut_crop(image, square, size, scale), dtype=np.uint8).transpose(2, 0, 1))
    if not crops:
        return np.zeros((0, 3, size, size), dtype=np.uint8)
    return np.ascontiguousarray(np.stack(crops))


def box_offsets(square: Sequence[float], box: Sequence[float]) -> tuple[float, float, float, float]:
    """What the box head learns: ``box``'s centre relative to the ``square``'s centre and its log
    width and height, all in crop sides (:func:`refined_boxes` inverts it)."""
    side = float(square[2]) - float(square[0])
    cx, cy = (float(square[0]) + float(square[2])) / 2, (float(square[1]) + float(square[3])) / 2
    w, h = max(float(box[2]) - float(box[0]), 1e-6), max(float(box[3]) - float(box[1]), 1e-6)
    bx, by = (float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2
    return ((bx - cx) / side, (by - cy) / side, math.log(w / side), math.log(h / side))


def refined_boxes(
    squares: Sequence[Box], offsets: np.ndarray, within: tuple[int, int] | None = None
) -> list[Box]:
    """The boxes (photo pixels) that the box head's ``offsets`` ``[N,4]`` (:func:`box_offsets`)
    give in their crop ``squares``; sizes are capped at ``MAX_LOG_SIZE``, and with ``within``
    (the photo's width and height) the boxes are clipped to the photo, as the detector's are."""
    out: list[Box] = []
    for (x0, y0, x1, _), (dx, dy, lw, lh) in zip(squares, np.asarray(offsets, np.float64), strict=True):
        side = x1 - x0
        cx, cy = x0 + side / 2 + dx * side, y0 + side / 2 + dy * side
        w, h = side * math.exp(min(lw, MAX_LOG_SIZE)), side * math.exp(min(lh, MAX_LOG_SIZE))
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if within is not None:
            wx, wy = float(within[0]), float(within[1])
            box = (
                min(max(box[0], 0.0), wx),
                min(max(box[1], 0.0), wy),
                min(max(box[2], 0.0), wx),
                min(max(box[3], 0.0), wy),
            )
        out.append(box)
    return out


def refine_proposals(
    boxes: Sequence[Box], offsets: np.ndarray, photo_size: tuple[int, int], settings: ZoomSettings
) -> list[Box]:
    """The refined boxes of proposals ``boxes`` (photo pixels) from the box head's ``offsets`` on
    their crops, clipped to the ``photo_size`` photo: what the server serves with ``refine``."""
    return refined_boxes(crop_squares(boxes, photo_size, settings), offsets, within=photo_size)


def distinct(boxes: Sequence[Box], scores: Sequence[float], threshold: float = DUPLICATE_IOU) -> list[int]:
    """Indices of ``boxes``, surest first, without any box that overlaps a surer kept one at IoU
    >= ``threshold`` (the same camera proposed twice)."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: -float(scores[k])):
        if all(iou(boxes[i], boxes[k]) < threshold for k in kept):
            kept.append(i)
    return kept


def camera_probability(probs: np.ndarray, labels: LabelSet) -> np.ndarray:
    """Summed camera-class probability of each row of ``probs`` ``[N,C]`` (label-set order)."""
    idx = [labels.index(n) for n in labels.cameras]
    result: np.ndarray = np.asarray(probs)[:, idx].sum(axis=1)
    return result


def zoom_cameras(
    boxes: Sequence[Box], probs: np.ndarray, labels: LabelSet, threshold: float
) -> tuple[list[Camera], Camera | None]:
    """The cameras among proposals (``boxes`` in photo pixels, crop probabilities ``[N,C]``), most
    confident first and each camera once (:func:`distinct`), and the proposal most like a camera
    below ``threshold`` (or None)."""
    cam_idx = [labels.index(n) for n in labels.cameras]
    cameras: list[Camera] = []
    best_miss: Camera | None = None
    best_p = -1.0
    for box, p in zip(boxes, np.asarray(probs, dtype=np.float64), strict=True):
        top = max(cam_idx, key=lambda j: p[j])
        order = np.argsort(-p, kind="stable")
        ranked = tuple((labels.names[i], float(p[i])) for i in order)
        photo_box = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        cam = Camera(photo_box, labels.names[top], float(p[top]), ranked)
        p_camera = float(p[cam_idx].sum())
        if p_camera >= threshold:
            cameras.append(cam)
        elif p_camera > best_p:
            best_miss, best_p = cam, p_camera
    cameras = [cameras[i] for i in distinct([c.box for c in cameras], [c.confidence for c in cameras])]
    return cameras, best_miss
