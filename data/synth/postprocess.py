"""Phone-camera effects for rendered frames (numpy + Pillow, deterministic per plan)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def motion_blur(arr: np.ndarray, length_px: float, angle_deg: float) -> np.ndarray:
    """Average of the image shifted along a line (hand shake during the exposure)."""
    steps = max(2, int(math.ceil(length_px)) + 1)
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    pad = steps + 1
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = arr.shape[:2]
    acc = np.zeros_like(arr, dtype=np.float32)
    for i in range(steps):
        t = (i / (steps - 1) - 0.5) * length_px
        ox, oy = int(round(t * dx)), int(round(t * dy))
        acc += padded[pad + oy : pad + oy + h, pad + ox : pad + ox + w]
    out: np.ndarray = acc / steps
    return out


def vignette(arr: np.ndarray, strength: float) -> np.ndarray:
    """Darken the corners a little, as small phone lenses do."""
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    out: np.ndarray = arr * (1.0 - strength * np.clip(r2 / 2.0, 0, 1))[..., None]
    return out


def sensor_noise(arr: np.ndarray, sigma: float, chroma: float, seed: int) -> np.ndarray:
    """Luminance noise plus a little colour noise, stronger in the shadows."""
    rng = np.random.default_rng(seed)
    h, w = arr.shape[:2]
    shadow = 1.0 + 0.8 * (1.0 - arr.mean(axis=2, keepdims=True) / 255.0)
    luma = rng.normal(0, sigma, (h, w, 1)).astype(np.float32)
    col = rng.normal(0, chroma, (h, w, 3)).astype(np.float32)
    out: np.ndarray = arr + (luma + col) * shadow
    return out


def phone_effects(img: Image.Image, post: Mapping[str, Any]) -> Image.Image:
    """Apply white balance, tone, blur/sharpening, motion blur, vignette and noise."""
    # phones denoise (smudging fine texture); it also hides the path tracer's low-sample noise
    if post.get("denoise", 0) > 0:
        img = Image.blend(img, img.filter(ImageFilter.MedianFilter(3)), post["denoise"])
    # phones render skies and colours punchier than Filmic's neutral look
    img = ImageEnhance.Color(img).enhance(post.get("saturation", 1.0))
    img = ImageEnhance.Contrast(img).enhance(post.get("contrast", 1.0))
    if post.get("blur", 0) > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(post["blur"]))
    if post.get("sharpen", 0) > 0:
        img = img.filter(ImageFilter.UnsharpMask(radius=1.2, percent=int(80 * post["sharpen"]), threshold=2))
    arr = np.asarray(img, dtype=np.float32)
    arr = 255.0 * (arr / 255.0) ** post.get("gamma", 1.0)
    arr = arr * np.asarray(post.get("wb", (1, 1, 1)), dtype=np.float32)
    if post.get("motion_px", 0) > 0:
        arr = motion_blur(arr, post["motion_px"] * img.width / 256.0, post["motion_angle"])
    arr = vignette(arr, post.get("vignette", 0.0))
    arr = sensor_noise(arr, post.get("noise", 0.0), post.get("chroma_noise", 0.0), post.get("noise_seed", 0))
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def composite(fg: Image.Image, background: Image.Image) -> Image.Image:
    """Alpha-composite an RGBA render over a background cropped (centred, to the render's
    aspect) and resized to its size."""
    bg = background.convert("RGB")
    scale = min(bg.width / fg.width, bg.height / fg.height)
    w, h = round(fg.width * scale), round(fg.height * scale)
    left, top = (bg.width - w) // 2, (bg.height - h) // 2
    bg = bg.crop((left, top, left + w, top + h)).resize(fg.size, Image.Resampling.BILINEAR)
    out = bg.convert("RGBA")
    out.alpha_composite(fg.convert("RGBA"))
    return out.convert("RGB")


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """JPEG bytes (4:2:0 subsampling, like phones)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), subsampling=2)
    return buf.getvalue()


def finish_image(
    raw_png: Path, out_jpg: Path, post: Mapping[str, Any], background: Path | None = None
) -> None:
    """Turn a raw render into the final JPEG (atomic write: temp file, then rename)."""
    with Image.open(raw_png) as im:
        im.load()
        img = composite(im, Image.open(background)) if background is not None else im.convert("RGB")
    data = encode_jpeg(phone_effects(img, post), post.get("jpeg_quality", 85))
    out_jpg.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_jpg.with_suffix(".jpg.part")
    tmp.write_bytes(data)
    tmp.replace(out_jpg)
