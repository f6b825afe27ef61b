"""Square crops around a camera box: the one geometry for look-then-zoom, few-shot and training.

A crop around a box is a square centred on the box, ``context`` times the box's longer side (so
the pole, arm and sky around the camera are in it), at least ``min_px`` photo pixels, moved inside
the photo where it fits. The same function cuts training crops, few-shot crops and the zoom
stage's crops at serving time, so what a crop classifier sees in training is what it sees live.
Torch-free (Pillow only).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

Box = tuple[float, float, float, float]

DEFAULT_CONTEXT = 2.0
DEFAULT_MIN_PX = 24.0


def crop_square(
    box: Sequence[float],
    width: float,
    height: float,
    *,
    context: float = DEFAULT_CONTEXT,
    min_px: float = DEFAULT_MIN_PX,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> Box:
    """The square crop ``(x0, y0, x1, y1)`` around ``box`` in a ``width`` x ``height`` photo.

    ``scale`` and ``shift`` (in crop sides) jitter it for augmentation. The square is shifted to
    stay inside the photo when it fits; a square larger than the photo is kept centred (the part
    outside is padded by :func:`cut_crop`).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(min_px, context * max(x1 - x0, y1 - y0)) * scale
    cx = (x0 + x1) / 2 + shift[0] * side
    cy = (y0 + y1) / 2 + shift[1] * side
    left = _inside(cx - side / 2, side, width)
    top = _inside(cy - side / 2, side, height)
    return (left, top, left + side, top + side)


def _inside(start: float, side: float, limit: float) -> float:
    if side >= limit:
        return (limit - side) / 2
    return min(max(start, 0.0), limit - side)


def cut_crop(
    image: Image.Image, square: Sequence[float], size: int, scale_to_image: float = 1.0
) -> Image.Image:
    """The ``size`` x ``size`` RGB crop of ``square`` (photo pixels) from ``image``.

    ``scale_to_image`` converts photo pixels to ``image`` pixels when the photo was decoded
    smaller (JPEG draft): 0.5 for a photo decoded at half size. Parts outside are grey.
    """
    x0, y0, x1, y1 = (float(v) * scale_to_image for v in square)
    if not _within(image, (x0, y0, x1, y1)):
        return _padded(image, (x0, y0, x1, y1), size)
    return image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))


def _within(image: Image.Image, box: Box) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[2] <= image.width and box[3] <= image.height


def _padded(image: Image.Image, box: Box, size: int) -> Image.Image:
    """Crop with grey padding where ``box`` leaves the image."""
    x0, y0, x1, y1 = box
    side = max(1, round(x1 - x0))
    canvas = Image.new("RGB", (side, max(1, round(y1 - y0))), (128, 128, 128))
    ix0, iy0 = max(0.0, x0), max(0.0, y0)
    ix1, iy1 = min(float(image.width), x1), min(float(image.height), y1)
    if ix1 > ix0 and iy1 > iy0:
        part = image.convert("RGB").crop((round(ix0), round(iy0), round(ix1), round(iy1)))
        canvas.paste(part, (round(ix0 - x0), round(iy0 - y0)))
    return canvas.resize((size, size), Image.Resampling.BILINEAR)
