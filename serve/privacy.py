"""Blur bystanders' faces and licence plates before a photo leaves the moderators' eyes.

Detection uses the Haar cascades that ship inside ``opencv-python-headless`` 4.x
(``cv2.data.haarcascades``): frontal and profile faces, Russian-style and generic plates. They run
offline on CPU in tens of milliseconds on a 1024 px picture. They miss some faces (strong angles,
small or dark faces) and sometimes fire on texture, so the regions found are blurred generously;
moderators still see the original and should reject photos that show people clearly.

Fails closed: without the cascades (OpenCV 5 dropped them), :func:`blur_sensitive` raises
:class:`PrivacyError` instead of letting an unblurred photo out.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

log = logging.getLogger(__name__)

DETECT_SIDE = 1024  # detection runs on a copy downscaled to this longer side
MARGIN = 0.25  # grow each box by this fraction on every side before blurring
_CASCADES = {
    "face": ("haarcascade_frontalface_default.xml", 4, 20),
    "profile": ("haarcascade_profileface.xml", 4, 20),
    "plate": ("haarcascade_russian_plate_number.xml", 3, 16),
    "plate16": ("haarcascade_license_plate_rus_16stages.xml", 3, 16),
}


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
def _detectors() -> dict[str, Any]:
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


def detect_sensitive(img: Image.Image) -> list[Region]:
    """Faces and licence plates in ``img`` (any size), as boxes in its own pixels."""
    import cv2

    scale = min(1.0, DETECT_SIDE / max(img.size))
    small = img.convert("L")
    if scale < 1.0:
        small = small.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    grey = cv2.equalizeHist(np.asarray(small, dtype=np.uint8))
    regions: list[Region] = []
    for kind, cascade in _detectors().items():
        _, neighbours, min_side = _CASCADES[kind]
        boxes = cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=neighbours, minSize=(min_side, min_side)
        )
        for x, y, w, h in np.asarray(boxes).reshape(-1, 4).tolist():
            regions.append(
                Region(kind, round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            )
    return regions


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
