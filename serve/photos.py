"""The one photo-decoding path of serving: HTTP uploads (:mod:`serve.classify`) and ``camid predict``.

Torch- and FastAPI-free; callers turn :class:`~data.images.ImageError` into their own message
(an HTTP error JSON naming ``image[i]``, or a CLI line naming the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from data.dedup import phash, sha256_bytes
from data.images import ImageInfo, ImageLimits, load_image, probe_image, read_gps

__all__ = ["DecodedPhoto", "decode_photo"]


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
    usable photo within ``limits``.
    """
    limits = limits or ImageLimits()
    info = info or probe_image(data, limits=limits)
    image = load_image(data, limits=limits, min_side=min_side)
    gps = read_gps(data)
    location = {"lat": gps[0], "lon": gps[1], "source": "exif"} if gps else None
    return DecodedPhoto(image, info.width, info.height, sha256_bytes(data), phash(image), location)
