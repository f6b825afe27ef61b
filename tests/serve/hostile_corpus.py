"""Hostile and awkward uploads for the HTTP tests, all generated in memory (nothing large allocated)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

# Belgrade, Republic Square: 44 deg 48' 57.6" N, 20 deg 27' 39.6" E
BELGRADE_DMS = {1: "N", 2: (44.0, 48.0, 57.6), 3: "E", 4: (20.0, 27.0, 39.6)}
BELGRADE = (44.816, 20.461)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>'


@dataclass(frozen=True)
class Case:
    """One upload: what the client sends and the status (and error code) it must get back."""

    id: str
    data: bytes
    status: int
    code: str | None = None
    filename: str = "photo.jpg"
    content_type: str = "image/jpeg"


def photo(size: tuple[int, int] = (80, 60), seed: int = 0) -> Image.Image:
    """A small photo-like RGB picture: gradient, a block and noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), np.full_like(xx, 128)], -1)
    base[h // 4 : h // 2, w // 4 : w // 2] = rng.integers(0, 256, 3)
    return Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8))


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg(size: tuple[int, int] = (80, 60), seed: int = 0, **kw: object) -> bytes:
    return encode(photo(size, seed), "JPEG", quality=90, **kw)


def gps_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = BELGRADE_DMS
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = 40_000, height: int = 40_000, depth: int = 8, colour: int = 2) -> bytes:
    """A few hundred bytes whose IHDR claims ``width`` x ``height`` (valid CRCs); never allocated.

    ``depth`` bits per sample and ``colour`` type (2: RGB, 6: RGBA, 0: grey) as in the PNG spec.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int = 65_000, height: int = 65_000) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to claim ``width`` x ``height``."""
    data = bytearray(jpeg((16, 16)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def header_only_jpeg() -> bytes:
    """Markers up to and including the scan header, no entropy-coded data and no EOI."""
    data = jpeg((32, 32))
    sos = data.find(b"\xff\xda")
    length = struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    return data[: sos + 2 + length]


def animated_gif() -> bytes:
    frames = [photo((48, 36), seed=i).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_png_with_transparency() -> bytes:
    img = photo((48, 36)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(img, "PNG", transparency=0)


def png16() -> bytes:
    """A 16-bit grayscale PNG of a photo-like picture."""
    arr = np.asarray(photo((48, 32)).convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(arr), "PNG")


def gradient(size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth colour gradient: large brightness differences, no detail at all."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 / w, yy * 255 / h, np.full_like(xx, 128.0)], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def polyglot_jpeg_html() -> bytes:
    """A valid JPEG with an HTML document in a comment and after the end-of-image marker."""
    html = b"<html><script>alert(document.cookie)</script></html>"
    return encode(photo((48, 36)), "JPEG", comment=html) + html


def _zip() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", b"not really")
    return buf.getvalue()


def corpus() -> list[Case]:
    """At least 25 hostile or awkward uploads and what each must get."""
    good = jpeg()
    return [
        Case("empty", b"", 400, "empty"),
        Case("random_bytes", np.random.default_rng(1).bytes(4096), 415, "unsupported"),
        Case("truncated_jpeg", jpeg((200, 150), seed=2)[:900], 400, "corrupt"),
        Case("header_only_jpeg", header_only_jpeg(), 400, "corrupt"),
        Case("soi_then_garbage", b"\xff\xd8\xff" + b"\x00" * 200, 400, "corrupt"),
        Case("html_as_jpg", b"<!doctype html><html><body>hi</body></html>", 415, "unsupported"),
        Case(
            "svg_as_jpg",
            SVG,
            415,
            "unsupported",
        ),
        Case("pdf_as_jpg", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415, "unsupported"),
        Case("zip_as_jpg", _zip(), 415, "unsupported"),
        Case("png_bomb_40000", png_bomb(), 413, "too_many_pixels", "bomb.png", "image/png"),
        Case("jpeg_sof_65000", jpeg_claiming(), 413, "too_many_pixels"),
        Case("gif_header_only", b"GIF89a", 400, "corrupt", "a.gif", "image/gif"),
        Case("png_bad_crc", png_bomb(8, 8)[:40] + b"\x00\x00\x00\x00", 400, "corrupt", "a.png", "image/png"),
        Case("animated_gif", animated_gif(), 200, None, "anim.gif", "image/gif"),
        Case("cmyk_jpeg", encode(photo().convert("CMYK"), "JPEG"), 200),
        Case("png_16bit", png16(), 200, None, "deep.png", "image/png"),
        Case("palette_transparency_png", palette_png_with_transparency(), 200, None, "p.png", "image/png"),
        Case("one_pixel", encode(photo((1, 1)), "PNG"), 422, "too_small", "1.png", "image/png"),
        Case("4000x3", encode(photo((4000, 3)), "PNG"), 422, "too_small", "strip.png", "image/png"),
        Case("black", encode(Image.new("RGB", (640, 480)), "JPEG"), 422, "blank"),
        Case("white_png", encode(Image.new("L", (300, 200), 255), "PNG"), 422, "blank", "w.png", "image/png"),
        Case("gradient", encode(gradient(), "JPEG", quality=85), 422, "blank"),
        # 49 MP (under the pixel limit), 16-bit RGBA: 196 MB decoded, over the 160 MB budget.
        Case("png16_rgba_7000", png_bomb(7000, 7000, 16, 6), 413, "decoded_too_large", "d.png", "image/png"),
        Case("exif_rotated_gps", encode(photo((80, 40)), "JPEG", exif=gps_exif(orientation=6)), 200),
        Case("progressive_jpeg", jpeg(progressive=True), 200),
        Case("polyglot_jpeg_html", polyglot_jpeg_html(), 200),
        Case("heic", _heic(), 200, None, "IMG_0001.HEIC", "image/heic"),
        Case("webp", encode(photo(), "WEBP"), 200, None, "a.webp", "image/webp"),
        Case("bmp", encode(photo(), "BMP"), 200, None, "a.bmp", "image/bmp"),
        Case("tiff", encode(photo(), "TIFF"), 200, None, "a.tiff", "image/tiff"),
        Case("path_traversal_name", good, 200, None, "../../etc/passwd.jpg"),
        Case("script_name", encode(photo(), "PNG"), 200, None, '"<script>alert(1)</script>.png', "image/png"),
        Case("unicode_name", good, 200, None, "камера 📷.jpg"),
        Case("long_name", good, 200, None, "x" * 600 + ".jpg"),
        Case("png_declared_jpeg", encode(photo(), "PNG"), 200, None, "a.jpg", "image/jpeg"),
        Case("jpeg_declared_text", good, 200, None, "a.txt", "text/plain"),
        Case("html_declared_png", b"<html></html>", 415, "unsupported", "a.png", "image/png"),
    ]


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(photo(), "HEIF")
