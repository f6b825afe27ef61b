"""Image loading for camid: one torch-free implementation used by training, evaluation and serving.

Every photo enters camid through :func:`load_image`, which

- sniffs the format from the bytes (never from the file name) and refuses anything that is not
  JPEG, PNG, WebP, HEIC/HEIF, BMP, GIF or TIFF (``code="unsupported"``);
- checks the byte count (``"too_large"``) before reading, and from the header, before decoding,
  the pixel count (``"too_many_pixels"``) and the decoded size, width x height x bands x bytes
  per sample (``"decoded_too_large"``), so neither a decompression bomb nor a small 16-bit or
  float file that decodes to gigabytes is ever decoded;
- decodes fully inside ``try`` so truncated or corrupt files raise ``ImageError("corrupt")``
  instead of coming back half grey;
- decodes large JPEGs at a reduced scale (``draft``) when the caller only needs ``min_side``
  pixels on the shorter side;
- applies the EXIF orientation, takes the first frame and converts every mode to 8-bit RGB
  (transparency composited on white, 16-bit and float images scaled, not clipped, in strips of
  rows so the conversion needs little more memory than the decoded picture).

Only Pillow, pillow-heif (imported lazily, for HEIC) and numpy are used.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageMode, ImageOps, UnidentifiedImageError

__all__ = [
    "SUPPORTED_FORMATS",
    "ImageError",
    "ImageInfo",
    "ImageLimits",
    "decoded_bytes",
    "load_image",
    "probe_image",
    "read_gps",
    "sniff_format",
]

log = logging.getLogger(__name__)

ErrorCode = Literal[
    "empty",
    "unsupported",
    "corrupt",
    "too_large",
    "too_many_pixels",
    "decoded_too_large",
    "too_small",
    "blank",
]
Source = str | Path | bytes

SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "HEIF", "BMP", "GIF", "TIFF")
_SUPPORTED_TEXT = "JPEG, PNG, WebP, HEIC/HEIF, BMP, GIF, TIFF"
# ISO-BMFF brands that libheif decodes as HEVC-coded HEIF (AVIF is not supported by pillow-heif 1.x).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
_WHITE = (255, 255, 255)
# Python object reprs in Pillow's messages ("cannot identify image file <_io.BytesIO object at 0x…>").
_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
_SCALE_STRIP_PIXELS = 1 << 16  # pixels converted at a time from 16-bit/float to 8-bit
# Exceptions Pillow and its plugins raise on malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)


class ImageError(ValueError):
    """A photo that camid cannot use; ``code`` says why (the HTTP layer maps it to a status)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code


@dataclass(frozen=True)
class ImageLimits:
    """Upper bounds checked before decoding: file size in bytes, width x height in pixels, and the
    decoded picture's size in bytes (width x height x bands x bytes per sample of its mode)."""

    max_bytes: int = 25_000_000
    max_pixels: int = 50_000_000
    max_decoded_bytes: int = 160_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: upright size (EXIF orientation applied) and the sniffed format."""

    width: int
    height: int
    format: str
    orientation: int = 1


def sniff_format(head: bytes) -> str | None:
    """Return the image format named by the first bytes of a file (16 are enough), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if _is_heif(head):
        return "HEIF"
    return None


def _is_heif(head: bytes) -> bool:
    if head[4:8] != b"ftyp" or len(head) < 12:
        return False
    box_size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    if major in _HEIF_BRANDS:
        return True
    # Generic image brands: look for a HEVC brand among the compatible brands in the ftyp box.
    compatible = head[16 : min(box_size, len(head))]
    brands = {compatible[i : i + 4] for i in range(0, len(compatible) - 3, 4)}
    return major in _HEIF_GENERIC_BRANDS and bool(brands & _HEIF_BRANDS)


@functools.cache
def _register_heif() -> bool:
    """Register pillow-heif's opener with Pillow once; False when pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _name(source: Source) -> str:
    return "<bytes>" if isinstance(source, bytes | bytearray) else str(source)


def _read_bytes(source: Source, limits: ImageLimits) -> bytes:
    """Read the whole file, refusing empty and over-size files before reading them."""
    name = _name(source)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise _too_large(name, size, limits)
            with path.open("rb") as fh:
                data = fh.read(limits.max_bytes + 1)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{name}: no such file; check the path") from exc
    if not data:
        raise ImageError("empty", f"{name}: empty file (0 bytes); upload the photo again")
    if len(data) > limits.max_bytes:
        raise _too_large(name, len(data), limits)
    return data


def _too_large(name: str, size: int, limits: ImageLimits) -> ImageError:
    return ImageError(
        "too_large",
        f"{name}: {size:,} bytes is over the limit of {limits.max_bytes:,} bytes; "
        "send a smaller or more compressed photo",
    )


def _open(data: bytes, name: str, limits: ImageLimits) -> tuple[Image.Image, str]:
    """Open (header only) after sniffing; refuse unsupported formats and too many pixels."""
    fmt = sniff_format(data[:64])
    if fmt is None:
        raise ImageError("unsupported", f"{name}: not an image camid reads; supported: {_SUPPORTED_TEXT}")
    if fmt == "HEIF" and not _register_heif():
        raise ImageError(
            "unsupported", f"{name}: HEIC/HEIF needs the pillow-heif package (pip install pillow-heif)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise _bomb(name, exc, limits) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise ImageError(
            "corrupt", f"{name}: {fmt} file is corrupt or unreadable{_reason(exc)}; re-export the photo"
        ) from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("corrupt", f"{name}: header says {width}x{height} pixels")
    if width * height > limits.max_pixels:
        img.close()
        raise ImageError(
            "too_many_pixels",
            f"{name}: {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{limits.max_pixels:,}; downscale the photo first",
        )
    _check_decoded_size(img, name, limits)
    return img, fmt


def _bomb(name: str, exc: Image.DecompressionBombError, limits: ImageLimits) -> ImageError:
    """``too_many_pixels`` for a picture Pillow's own guard refused, in our words and with one limit."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f"{int(found.group(1)):,} pixels" if found else "its pixel count"
    limit = limits.max_pixels
    if Image.MAX_IMAGE_PIXELS:  # Pillow refuses at twice its warning limit, whatever ours is
        limit = min(limit, 2 * Image.MAX_IMAGE_PIXELS)
    return ImageError(
        "too_many_pixels",
        f"{name}: {pixels} is over the limit of {limit:,} (a decompression bomb?); downscale the photo first",
    )


def _reason(exc: BaseException) -> str:
    """`` (what the decoder said)`` without Python object reprs, or nothing when it said nothing."""
    text = _REPR.sub("", str(exc)).strip()
    return f" ({text})" if text else ""


def decoded_bytes(img: Image.Image) -> int:
    """Bytes the decoded picture takes: width x height x bands x bytes per sample of its mode."""
    width, height = img.size
    mode = ImageMode.getmode(img.mode)
    sample = int(mode.typestr[-1]) if mode.typestr[-1].isdigit() else 1
    return width * height * len(mode.bands) * sample


def _check_decoded_size(img: Image.Image, name: str, limits: ImageLimits) -> None:
    """Refuse, from the header, a picture whose decoded size is over ``limits.max_decoded_bytes``."""
    size = decoded_bytes(img)
    if size > limits.max_decoded_bytes:
        (width, height), mode = img.size, img.mode
        img.close()
        raise ImageError(
            "decoded_too_large",
            f"{name}: {width}x{height} pixels in mode {mode} would take {size / 1e6:,.0f} MB to "
            f"decode, over the limit of {limits.max_decoded_bytes / 1e6:,.0f} MB; "
            "send an 8-bit JPEG or downscale the photo",
        )


_UNLIMITED = ImageLimits(max_pixels=10**12, max_decoded_bytes=10**15)  # for reading headers only


def load_image(
    source: Source,
    *,
    limits: ImageLimits = ImageLimits(),  # noqa: B008 - frozen, so a shared default is safe
    min_side: int | None = None,
) -> Image.Image:
    """Load a photo as an upright 8-bit RGB image (first frame), or raise :class:`ImageError`.

    ``min_side`` is the smallest shorter side the caller needs (see
    ``data.preprocess.decode_hint``); large JPEGs are then decoded at 1/2, 1/4 or 1/8 scale while
    keeping the shorter side >= ``min_side``. Other formats are always decoded at full size.
    """
    name = _name(source)
    data = _read_bytes(source, limits)
    img, fmt = _open(data, name, limits)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; truncated photos will load half grey")
    try:
        if fmt == "JPEG" and min_side:
            img.draft("RGB", (min_side, min_side))
        img.load()
        img = _upright(img, name)
        return _to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise _bomb(name, exc, limits) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(
            "corrupt", f"{name}: {fmt} file is truncated or corrupt{_reason(exc)}; re-export the photo"
        ) from exc


def _upright(img: Image.Image, name: str) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block is logged and ignored."""
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as exc:  # broken EXIF must not make a good photo unusable
        log.warning("%s: EXIF orientation unreadable (%s); using the stored orientation", name, exc)
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "F") or mode.startswith("I;16"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode)).convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, _WHITE)
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def _strips(values: np.ndarray) -> range:
    """Start rows of strips of about ``_SCALE_STRIP_PIXELS`` pixels each."""
    rows = max(1, _SCALE_STRIP_PIXELS // max(values.shape[1], 1))
    return range(0, values.shape[0], rows)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values, strip by strip; (0, 0) when there are none."""
    if values.dtype.kind in "iu":
        return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    bottom, top, step = math.inf, -math.inf, _strips(values).step
    for y in _strips(values):
        strip = values[y : y + step]
        finite = strip[np.isfinite(strip)]
        if finite.size:
            bottom, top = min(bottom, float(finite.min())), max(top, float(finite.max()))
    return (bottom, top) if bottom <= top else (0.0, 0.0)


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float single-channel image to 0..255 (not clip).

    Converted in strips of rows, so the float working copies stay small whatever the picture's size.
    """
    bottom, top = _finite_range(values)
    if mode.startswith("I;16") or (mode == "I" and bottom >= 0 and 255 < top <= 65535):
        offset, factor = 0.0, 1 / 257.0  # 65535 -> 255 exactly
    elif mode == "F" and bottom >= 0 and top <= 1.0:
        offset, factor = 0.0, 255.0  # float images in 0..1
    elif bottom < 0 or top > 255:
        offset, factor = bottom, 255.0 / max(top - bottom, 1e-12)
    else:
        offset, factor = 0.0, 1.0
    out = np.empty(values.shape, np.uint8)
    step = _strips(values).step
    for y in _strips(values):
        arr = values[y : y + step].astype(np.float64)
        arr -= offset
        arr *= factor
        np.nan_to_num(arr, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        out[y : y + step] = np.clip(np.rint(arr, out=arr), 0, 255, out=arr)
    return out


def probe_image(
    source: Source,
    *,
    limits: ImageLimits = _UNLIMITED,  # probing reports, does not refuse
) -> ImageInfo:
    """Read only the header: upright width and height, format and EXIF orientation."""
    name = _name(source)
    data = _read_bytes(source, limits)
    img, fmt = _open(data, name, limits)
    with img:
        width, height = img.size
        orientation = _orientation(img)
    if orientation in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt, orientation=orientation)


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_gps(source: Source) -> tuple[float, float] | None:
    """Return ``(lat, lon)`` in decimal degrees from the EXIF GPS block, or None when absent/invalid.

    Raises :class:`ImageError` only when the file itself is not a readable image.
    """
    name = _name(source)
    data = _read_bytes(source, _UNLIMITED)
    img, _ = _open(data, name, _UNLIMITED)
    with img:
        try:
            gps = dict(img.getexif().get_ifd(ExifTags.IFD.GPSInfo))
        except _DECODE_ERRORS as exc:
            log.info("%s: EXIF unreadable (%s); no GPS", name, exc)
            return None
    return _gps_to_degrees(gps)


def _gps_to_degrees(gps: dict[int, Any]) -> tuple[float, float] | None:
    tags = ExifTags.GPS
    lat = _dms(gps.get(tags.GPSLatitude), gps.get(tags.GPSLatitudeRef), b"S")
    lon = _dms(gps.get(tags.GPSLongitude), gps.get(tags.GPSLongitudeRef), b"W")
    if lat is None or lon is None:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
        return None  # (0, 0) is what cameras write when they have no fix
    return lat, lon


def _dms(value: Any, ref: Any, negative_ref: bytes) -> float | None:
    """Degrees/minutes/seconds (rationals) plus a hemisphere reference -> signed decimal degrees."""
    if value is None:
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    try:
        numbers = [float(p) for p in parts[:3]]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not numbers or not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None
    degrees: float = sum(n / 60.0**i for i, n in enumerate(numbers))
    if isinstance(ref, str):
        ref = ref.encode("ascii", "ignore")
    if isinstance(ref, bytes) and ref.strip(b"\x00 ").upper().startswith(negative_ref):
        degrees = -degrees
    return degrees
