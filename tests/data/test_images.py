"""Tests for data.images: every supported format, every refusal code, orientation, draft, GPS."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile

from data.images import (
    ImageError,
    ImageLimits,
    decoded_bytes,
    load_image,
    probe_image,
    read_gps,
    sniff_format,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def corner_image(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """Blue image with a red square (1/6 of the width) in the top-left corner."""
    img = Image.new("RGB", size, BLUE)
    side = size[0] // 6
    img.paste(RED, (0, 0, side, side))
    return img


def png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (valid CRCs, a few bytes of data)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def close_to(pixel: tuple[int, ...], expected: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(pixel, expected, strict=True))


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("WEBP", {"quality": 95}),
        ("HEIF", {"quality": 95}),
        ("BMP", {}),
        ("GIF", {}),
        ("TIFF", {}),
    ],
)
def test_every_supported_format_loads_as_rgb(tmp_path: Path, fmt: str, kw: dict[str, object]) -> None:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    data = encode(corner_image(), fmt, **kw)
    path = tmp_path / "photo.bin"  # the name says nothing; the bytes decide
    path.write_bytes(data)

    img = load_image(path)

    assert img.mode == "RGB"
    assert img.size == (60, 40)
    assert close_to(img.getpixel((2, 2)), RED)
    assert close_to(img.getpixel((50, 30)), BLUE)
    assert sniff_format(data[:16]) == fmt
    assert load_image(data).size == (60, 40)  # bytes work as well as paths


def test_extension_is_ignored_and_non_images_are_unsupported(tmp_path: Path) -> None:
    png_named_jpg = tmp_path / "really_png.jpg"
    png_named_jpg.write_bytes(encode(corner_image(), "PNG"))
    assert load_image(png_named_jpg).size == (60, 40)

    text_named_jpg = tmp_path / "notes.jpg"
    text_named_jpg.write_text("this is not a photo\n" * 10)
    with pytest.raises(ImageError) as err:
        load_image(text_named_jpg)
    assert err.value.code == "unsupported"
    assert "notes.jpg" in str(err.value) and "JPEG" in str(err.value)


def test_random_bytes_are_unsupported() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ImageError) as err:
        load_image(b"\x00\x01" + rng.bytes(4096))
    assert err.value.code == "unsupported"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert err.value.code == "empty"
    assert "empty.jpg" in str(err.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_byte_limit_for_paths_and_bytes(tmp_path: Path) -> None:
    data = encode(corner_image(), "PNG")
    path = tmp_path / "big.png"
    path.write_bytes(data)
    limits = ImageLimits(max_bytes=len(data) - 1)
    for source in (path, data):
        with pytest.raises(ImageError) as err:
            load_image(source, limits=limits)
        assert err.value.code == "too_large"
    assert load_image(path, limits=ImageLimits(max_bytes=len(data))).size == (60, 40)


def test_decompression_bomb_is_refused_from_the_header() -> None:
    bomb = png_header_bomb(40_000, 40_000)
    assert len(bomb) < 200
    with pytest.raises(ImageError) as err:
        load_image(bomb)
    assert err.value.code == "too_many_pixels"
    assert "pixels" in str(err.value)
    # Even when the caller raises our limit, Pillow's own bomb guard is mapped to the same code.
    with pytest.raises(ImageError) as err:
        load_image(bomb, limits=ImageLimits(max_pixels=10**10))
    assert err.value.code == "too_many_pixels"


def test_pixel_limit_is_configurable() -> None:
    data = encode(corner_image(), "PNG")
    with pytest.raises(ImageError) as err:
        load_image(data, limits=ImageLimits(max_pixels=60 * 40 - 1))
    assert err.value.code == "too_many_pixels"


def test_truncated_jpeg_is_corrupt_not_grey() -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    data = encode(noisy, "JPEG", quality=90)
    with pytest.raises(ImageError) as err:
        load_image(data[: len(data) // 2])
    assert err.value.code == "corrupt"
    assert "truncated" in str(err.value)


def test_garbage_after_a_jpeg_signature_is_corrupt() -> None:
    with pytest.raises(ImageError) as err:
        load_image(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    assert err.value.code == "corrupt"


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    img = load_image(encode(cmyk, "JPEG", quality=95))
    assert img.mode == "RGB"
    assert close_to(img.getpixel((16, 16)), RED)


def test_16_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16).repeat(4, axis=0)
    img16 = Image.fromarray(values)
    assert img16.mode == "I;16"
    img = load_image(encode(img16, "PNG"))
    row = np.asarray(img)[0, :, 0]
    assert row.tolist() == [0, 128, 255, 4]  # 65535 -> 255, not every value > 255 clipped to 255


def test_32_bit_and_float_modes() -> None:
    ints = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert np.asarray(load_image(encode(ints, "TIFF")))[0, :, 0].tolist() == [0, 255]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(load_image(encode(floats, "TIFF")))[0, :, 0].tolist() == [0, 128, 255]


def gray16_png(width: int, height: int) -> bytes:
    """A 16-bit grayscale PNG (a few kB however large: rows of one value compress to nothing)."""
    return encode(Image.fromarray(np.full((height, width), 40_000, np.uint16)), "PNG")


def float_tiff(width: int, height: int) -> bytes:
    """A 32-bit float TIFF, deflate-compressed (small however large)."""
    zeros = Image.fromarray(np.zeros((height, width), np.float32))
    return encode(zeros, "TIFF", compression="tiff_adobe_deflate")


@pytest.mark.parametrize(
    ("data", "mode", "needed"),
    [
        (lambda: gray16_png(3000, 2000), "I;16", 3000 * 2000 * 2),
        (lambda: float_tiff(2000, 1500), "F", 2000 * 1500 * 4),
        (lambda: encode(Image.new("RGBA", (2000, 1500)), "PNG"), "RGBA", 2000 * 1500 * 4),
    ],
    ids=["png_16bit", "tiff_float", "png_rgba"],
)
def test_decoded_size_is_refused_from_the_header(
    data: Any, mode: str, needed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = data()
    assert len(photo) < 400_000  # small files: only the decoded size gives them away
    with Image.open(io.BytesIO(photo)) as img:
        assert img.mode == mode and decoded_bytes(img) == needed

    def no_decoding(self: Any) -> Any:
        raise AssertionError("decoded although over the budget")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError) as err:
        load_image(photo, limits=ImageLimits(max_decoded_bytes=needed - 1))
    assert err.value.code == "decoded_too_large"
    assert mode in str(err.value) and "MB" in str(err.value)


def test_16_bit_conversion_works_in_bounded_memory() -> None:
    """numpy's working memory for a 16-bit picture stays near its decoded size (was 5x: float64 copies)."""
    photo = gray16_png(2000, 1500)
    decoded = 2000 * 1500 * 2
    tracemalloc.start()
    try:
        img = load_image(photo)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.size == (2000, 1500) and img.getpixel((0, 0)) == (156, 156, 156)
    assert peak < 2.5 * decoded, f"peak {peak / 1e6:.0f} MB for a {decoded / 1e6:.0f} MB picture"


def test_unreadable_files_name_no_python_objects() -> None:
    with pytest.raises(ImageError) as err:
        load_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert err.value.code == "corrupt"
    assert " at 0x" not in str(err.value) and "BytesIO" not in str(err.value)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGBA"])
def test_other_modes_become_rgb(mode: str) -> None:
    img = load_image(encode(Image.new(mode, (8, 8)), "PNG"))
    assert img.mode == "RGB"
    assert img.size == (8, 8)


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    img = load_image(encode(rgba, "PNG"))
    assert img.getpixel((4, 4)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == RED


def test_palette_with_transparency_is_composited_on_white() -> None:
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    pal.putpixel((0, 0), 1)
    data = encode(pal, "PNG", transparency=0)
    img = load_image(data)
    assert img.getpixel((4, 4)) == (255, 255, 255)  # transparent black shows as white
    assert img.getpixel((0, 0)) == RED


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, (0, 255, 0), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    img = load_image(data)
    assert img.mode == "RGB"
    assert close_to(img.getpixel((8, 8)), RED, tol=10)


def jpeg_with_orientation(img: Image.Image, orientation: int, quality: int = 95) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(img, "JPEG", quality=quality, exif=exif.tobytes())


def test_exif_orientation_6_comes_out_upright() -> None:
    # Orientation 6: the viewer rotates the stored pixels 90 degrees clockwise, so the stored
    # top-left corner ends up top-right and the 60x40 landscape becomes a 40x60 portrait.
    data = jpeg_with_orientation(corner_image((60, 40)), 6)
    img = load_image(data)
    assert img.size == (40, 60)
    assert close_to(img.getpixel((35, 3)), RED)
    assert close_to(img.getpixel((3, 3)), BLUE)
    assert probe_image(data).width == 40 and probe_image(data).orientation == 6


def test_large_jpeg_is_draft_decoded_to_at_least_min_side() -> None:
    big = Image.new("RGB", (4000, 3000), BLUE)
    big.paste(RED, (0, 0, 400, 400))
    data = encode(big, "JPEG", quality=80)

    small = load_image(data, min_side=256)
    assert small.size == (500, 375)  # 1/8 scale: shorter side 375 >= 256
    assert close_to(small.getpixel((5, 5)), RED)
    assert load_image(data, min_side=1000).size == (2000, 1500)  # 1/2: 1/4 would give 750 < 1000
    assert load_image(data).size == (4000, 3000)


def test_draft_decoding_keeps_exif_rotation() -> None:
    data = jpeg_with_orientation(corner_image((4000, 3000)), 6, quality=70)
    img = load_image(data, min_side=256)
    assert img.size == (375, 500)
    assert min(img.size) >= 256
    assert close_to(img.getpixel((370, 5)), RED)
    assert close_to(img.getpixel((5, 5)), BLUE)


def test_probe_reads_only_the_header() -> None:
    rng = np.random.default_rng(2)
    noisy = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    data = encode(noisy, "JPEG")
    truncated = data[: len(data) // 2]  # decoding would fail; the header is intact
    info = probe_image(truncated)
    assert (info.width, info.height, info.format) == (64, 48, "JPEG")
    with pytest.raises(ImageError):
        load_image(truncated)


def jpeg_with_gps(gps: dict[int, object]) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = gps
    return encode(Image.new("RGB", (16, 16)), "JPEG", exif=exif.tobytes())


def test_read_gps_from_exif(tmp_path: Path) -> None:
    # Belgrade, Republic Square: 44 deg 48' 57.6" N, 20 deg 27' 39.6" E
    data = jpeg_with_gps({1: "N", 2: (44.0, 48.0, 57.6), 3: "E", 4: (20.0, 27.0, 39.6)})
    path = tmp_path / "gps.jpg"
    path.write_bytes(data)
    lat, lon = read_gps(path) or (None, None)
    assert lat == pytest.approx(44.816, abs=1e-6)
    assert lon == pytest.approx(20.461, abs=1e-6)


def test_read_gps_southern_and_western_hemispheres() -> None:
    data = jpeg_with_gps({1: "S", 2: (33.0, 52.0, 4.0), 3: "W", 4: (151.0, 12.0, 36.0)})
    lat, lon = read_gps(data) or (0.0, 0.0)
    assert lat == pytest.approx(-(33 + 52 / 60 + 4 / 3600))
    assert lon == pytest.approx(-(151 + 12 / 60 + 36 / 3600))


@pytest.mark.parametrize(
    "gps",
    [
        {},
        {1: "N", 2: (44.0, 48.0, 57.6)},  # no longitude
        {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (20.0, 0.0, 0.0)},  # latitude out of range
        {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)},  # "no fix" placeholder
    ],
)
def test_read_gps_missing_or_invalid_is_none(gps: dict[int, object]) -> None:
    assert read_gps(jpeg_with_gps(gps)) is None


def test_read_gps_without_exif_is_none() -> None:
    assert read_gps(encode(corner_image(), "PNG")) is None
