"""The photo shown in a public camera's popup: the blurred copy, cropped around the camera's box."""

from __future__ import annotations

import io

from PIL import Image

from serve.exports import public_photo
from serve.store import Store, Submission

POPUP_SIDE = 480  # the popup photo's longer side, in pixels
CONTEXT = 3.0  # the crop is this many times the box's size (the pole and the street around it)
MIN_CROP_PX = 320


def crop_box(
    box: list[float] | None, size: tuple[int, int], original: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The crop around ``box`` (pixels of the original photo) in a photo of ``size``; None: all."""
    if box is None:
        return None
    sx, sy = size[0] / original[0], size[1] / original[1]
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    side = max((x1 - x0) * CONTEXT, (y1 - y0) * CONTEXT, MIN_CROP_PX)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    return left, top, min(size[0], round(cx + side / 2)), min(size[1], round(cy + side / 2))


def popup_jpeg(store: Store, submission_id: str, box: list[float] | None) -> bytes:
    """A small JPEG of a verified photo (faces and plates blurred) around the camera's box.

    Raises :class:`serve.privacy.PrivacyError` when the photo cannot be blurred (never sent unblurred).
    """
    with store.session() as s:
        sub = s.get(Submission, submission_id)
        if sub is None:
            raise LookupError(f"no submission {submission_id!r}")
        rel, original = sub.photo, (sub.width, sub.height)
    with Image.open(public_photo(store, rel)) as img:
        area = crop_box(box, img.size, original)
        shown = (img.crop(area) if area else img).convert("RGB")
    shown.thumbnail((POPUP_SIDE, POPUP_SIDE))
    buf = io.BytesIO()
    shown.save(buf, "JPEG", quality=82)
    return buf.getvalue()
