"""Where the model looked, drawn over the photo itself in the photo's own frame and aspect ratio.

The model sees a square input (the photo letterboxed or centre-cropped, ``data/preprocess.py``);
its activation map lives in that square. The overlay maps it back through the same placement
geometry onto the upright photo, so it lines up with the photo for every aspect ratio; what the
model did not see (a centre crop's cut-off sides) is dimmed.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from data.preprocess import ResizeRule, placement

MAX_SIDE = 1024  # the overlay's longer side: enough for a moderator's screen, small to send

# A perceptually ordered blue -> cyan -> yellow -> red ramp (control points, linearly interpolated).
_RAMP = np.array(
    [[48, 18, 59], [70, 107, 227], [40, 188, 235], [50, 242, 152], [164, 252, 60], [237, 208, 58],
     [251, 128, 34], [209, 49, 6], [122, 4, 3]],
    dtype=np.float64,
)  # fmt: skip


def colormap(heat: np.ndarray) -> np.ndarray:
    """``[h,w]`` values in 0..1 to ``[h,w,3]`` uint8 colours."""
    pos = np.clip(heat, 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    colours: np.ndarray = (_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).round().astype(np.uint8)
    return colours


def heat_in_photo(cam: np.ndarray, size: tuple[int, int], rule: ResizeRule) -> tuple[np.ndarray, np.ndarray]:
    """``cam`` (``[h,w]`` over the model's square input), normalised to 0..1 and resampled onto a
    photo of ``size`` (w, h); with the mask (1 where the model saw the photo, 0 where it did not)."""
    span = float(cam.max() - cam.min())
    norm = ((cam - cam.min()) / span if span > 0 else np.zeros_like(cam)).astype(np.float32)
    square = Image.fromarray(norm, mode="F").resize((rule.size, rule.size), Image.Resampling.BILINEAR)
    seen = Image.new("F", (rule.size, rule.size), 1.0)
    p = placement(size[0], size[1], rule)
    (ox, oy), (rw, rh) = p.offset, p.resized
    extent = (float(ox), float(oy), float(ox + rw), float(oy + rh))  # the photo's rectangle in the square
    warp = Image.Transform.EXTENT
    heat = square.transform(size, warp, extent, Image.Resampling.BILINEAR)
    mask = seen.transform(size, warp, extent, Image.Resampling.NEAREST)
    return np.asarray(heat, dtype=np.float64), np.asarray(mask, dtype=np.float64)


def heatmap_overlay(cam: np.ndarray, photo: Image.Image, rule: ResizeRule, alpha: float = 0.45) -> bytes:
    """PNG of the photo (longer side at most 1024 px, same aspect ratio) with ``cam`` blended over
    the part the model saw and the rest dimmed."""
    picture = photo.convert("RGB")
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    base = np.asarray(picture, dtype=np.float64)
    heat, seen = heat_in_photo(cam, picture.size, rule)
    a = (alpha * heat + 0.15)[..., None]
    blended = base * (1 - a) + colormap(heat).astype(np.float64) * a
    out = np.where(seen[..., None] > 0.5, blended, base * 0.45)
    buf = io.BytesIO()
    Image.fromarray(out.round().clip(0, 255).astype(np.uint8)).save(buf, "PNG", optimize=False)
    return buf.getvalue()
