"""The one resize rule that turns a decoded photo into the model's uint8 input.

Training evaluation, ONNX export parity checks and the server all call :func:`prepare`, so the
deployed model sees exactly what it was evaluated on. Normalisation is not done here: it lives
inside the model (and its ONNX graph).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

Mode = Literal["letterbox", "center_crop"]
_INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class ResizeRule:
    """How a photo becomes a ``size`` x ``size`` input.

    ``letterbox`` (default) scales the whole photo so its longer side is ``size`` and pads the
    rest with ``fill``: nothing is cut off, which matters when the camera sits near the edge of a
    citizen's photo. ``center_crop`` scales the shorter side to ``size / crop_pct`` and crops.
    """

    size: int = 224
    mode: Mode = "letterbox"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    fill: tuple[int, int, int] = (124, 116, 104)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"ResizeRule.size must be >= 8, got {self.size}")
        if self.mode not in ("letterbox", "center_crop"):
            raise ValueError(f"ResizeRule.mode must be 'letterbox' or 'center_crop', got {self.mode!r}")
        if not 0.1 <= self.crop_pct <= 1.0:
            raise ValueError(f"ResizeRule.crop_pct must be in 0.1..1.0, got {self.crop_pct}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"ResizeRule.interpolation must be one of {sorted(_INTERPOLATIONS)}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["fill"] = list(self.fill)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ResizeRule:
        d = dict(d)
        if "fill" in d:
            d["fill"] = tuple(int(v) for v in d["fill"])
        return cls(**d)


def decode_hint(rule: ResizeRule) -> int:
    """The shortest side a decoder must keep (JPEG draft) for ``prepare`` to lose nothing."""
    if rule.mode == "center_crop":
        return math.ceil(rule.size / rule.crop_pct)
    return rule.size


@dataclass(frozen=True)
class Placement:
    """Where a ``width`` x ``height`` photo lands in the model input: resized to ``resized`` and
    its top-left corner put at ``offset`` (negative when ``center_crop`` cuts it)."""

    resized: tuple[int, int]
    offset: tuple[int, int]


def placement(width: int, height: int, rule: ResizeRule) -> Placement:
    """The geometry of :func:`prepare` for a photo of this size (the one place it is computed)."""
    if rule.mode == "letterbox":
        scale = rule.size / max(width, height)
        nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
        return Placement((nw, nh), ((rule.size - nw) // 2, (rule.size - nh) // 2))
    scale = rule.size / rule.crop_pct / min(width, height)
    nw, nh = max(rule.size, round(width * scale)), max(rule.size, round(height * scale))
    return Placement((nw, nh), (-((nw - rule.size) // 2), -((nh - rule.size) // 2)))


Box = tuple[float, float, float, float]


def photo_to_input(box: Box, width: int, height: int, rule: ResizeRule) -> Box:
    """A box in pixels of the ``width`` x ``height`` photo in model-input pixels (not clipped)."""
    p = placement(width, height, rule)
    sx, sy = p.resized[0] / width, p.resized[1] / height
    (ox, oy), (x0, y0, x1, y1) = p.offset, box
    return (x0 * sx + ox, y0 * sy + oy, x1 * sx + ox, y1 * sy + oy)


def input_to_photo(box: Box, width: int, height: int, rule: ResizeRule) -> Box:
    """A box in model-input pixels back in pixels of the ``width`` x ``height`` photo (clipped).

    ``width``/``height`` may be the original photo's size even when it was decoded smaller: the
    geometry depends on the aspect ratio only (up to a pixel of rounding).
    """
    p = placement(width, height, rule)
    sx, sy = p.resized[0] / width, p.resized[1] / height
    (ox, oy), (x0, y0, x1, y1) = p.offset, box
    w, h = float(width), float(height)
    return (
        min(max((x0 - ox) / sx, 0.0), w),
        min(max((y0 - oy) / sy, 0.0), h),
        min(max((x1 - ox) / sx, 0.0), w),
        min(max((y1 - oy) / sy, 0.0), h),
    )


def _letterbox(img: Image.Image, rule: ResizeRule) -> Image.Image:
    p = placement(*img.size, rule)
    resized = img.resize(p.resized, _INTERPOLATIONS[rule.interpolation])
    canvas = Image.new("RGB", (rule.size, rule.size), rule.fill)
    canvas.paste(resized, p.offset)
    return canvas


def _center_crop(img: Image.Image, rule: ResizeRule) -> Image.Image:
    p = placement(*img.size, rule)
    resized = img.resize(p.resized, _INTERPOLATIONS[rule.interpolation])
    left, top = -p.offset[0], -p.offset[1]
    return resized.crop((left, top, left + rule.size, top + rule.size))


def prepare_image(img: Image.Image, rule: ResizeRule) -> Image.Image:
    """The resized ``size`` x ``size`` RGB picture the model sees (also used for heatmap overlays)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return _letterbox(img, rule) if rule.mode == "letterbox" else _center_crop(img, rule)


def prepare(img: Image.Image, rule: ResizeRule) -> np.ndarray:
    """The model input for one photo: uint8 array ``(3, size, size)``, RGB, not normalised."""
    arr = np.asarray(prepare_image(img, rule), dtype=np.uint8)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))
