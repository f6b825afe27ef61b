"""The one photo-decoding path of serving: HTTP uploads (:mod:`serve.classify`) and ``camid predict``.

Torch- and FastAPI-free; callers turn :class:`~data.images.ImageError` into their own message
(an HTTP error JSON naming ``image[i]``, or a CLI line naming the file; :func:`reason` gives the
message without the decoder's ``<bytes>`` name).

Before the model sees a photo, two checks refuse pictures that cannot show a camera, so they never
get a confident-looking answer or a place at the top of the moderators' queue:

- ``too_small``: shorter side under :data:`MIN_SIDE` pixels (a 1x1 image, a 4000x3 strip), from
  the header, before decoding;
- ``blank``: one flat colour, or no detail at all (a smooth gradient): fewer than
  :data:`MIN_EDGE_PIXELS` pixels of a 256-px thumbnail where the brightness bends sharply
  (absolute Laplacian of at least :data:`EDGE_LEVEL` grey levels). Any photo of a street, a
  pole or a wall has thousands; a camera that leaves no edge in a 256-px thumbnail would be a
  pixel or two in the model's input too. The check errs on the side of accepting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from data.dedup import phash, sha256_bytes
from data.images import ImageError, ImageInfo, ImageLimits, load_image, probe_image, read_gps

__all__ = ["MIN_SIDE", "DecodedPhoto", "check_content", "check_size", "decode_photo", "reason"]

MIN_SIDE = 32  # pixels on the shorter side
EDGE_LEVEL = 10.0  # grey levels of |Laplacian| that make a pixel an edge
MIN_EDGE_PIXELS = 8  # edge pixels in the thumbnail below which a photo is blank
_THUMB = 256


@dataclass(frozen=True)
class DecodedPhoto:
    """One photo, decoded: the upright RGB picture and the facts the result reports about it."""

    image: Image.Image
    width: int
    height: int
    sha256: str
    phash: str
    location: dict[str, Any] | None

    def facts(self) -> dict[str, Any]:
        """The keyword arguments of :func:`serve.engine.build_result` that describe the photo."""
        return {
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "phash": self.phash,
            "location": self.location,
        }


def reason(exc: ImageError) -> str:
    """The message of an :class:`ImageError` from decoding bytes, without the ``<bytes>: `` name."""
    return str(exc).removeprefix("<bytes>: ").removeprefix("<bytes>")


def check_size(info: ImageInfo) -> None:
    """Refuse, from the header, a picture too small to show a camera (``too_small``)."""
    if min(info.width, info.height) < MIN_SIDE:
        raise ImageError(
            "too_small",
            f"{info.width}x{info.height} pixels is too small to show a camera; send a photo at least "
            f"{MIN_SIDE} pixels on each side",
        )


def check_content(image: Image.Image) -> None:
    """Refuse a decoded picture with nothing in it: one flat colour or a smooth gradient (``blank``)."""
    factor = max(image.size) // _THUMB
    small = image.reduce(factor) if factor > 1 else image  # box-averaged, 256 to 511 px long
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    if grey.std() < 1.0:
        raise ImageError("blank", "the photo is one flat colour (blank); send a photo of the camera")
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    if int((np.abs(laplacian) >= EDGE_LEVEL).sum()) < MIN_EDGE_PIXELS:
        raise ImageError(
            "blank",
            "the photo shows no detail (a smooth gradient or an empty frame); send a photo of the camera",
        )


def decode_photo(
    data: bytes,
    *,
    limits: ImageLimits | None = None,
    min_side: int | None = None,
    info: ImageInfo | None = None,
) -> DecodedPhoto:
    """Decode a photo's bytes (JPEGs at reduced scale when ``min_side`` allows) and gather its facts.

    ``limits`` default to :class:`~data.images.ImageLimits`'s; ``info`` is the header when the
    caller has probed it already. Raises :class:`~data.images.ImageError` when the bytes are not a
    usable photo within ``limits``, or when the picture is too small or blank (see the module).
    """
    limits = limits or ImageLimits()
    info = info or probe_image(data, limits=limits)
    check_size(info)
    image = load_image(data, limits=limits, min_side=min_side)
    check_content(image)
    gps = read_gps(data)
    location = {"lat": gps[0], "lon": gps[1], "source": "exif"} if gps else None
    return DecodedPhoto(image, info.width, info.height, sha256_bytes(data), phash(image), location)
