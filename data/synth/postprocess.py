"""Phone-camera effects for rendered frames (numpy + Pillow, deterministic per plan)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
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


def _radial(w: int, h: int) -> tuple[float, float, float]:
    """Centre and the half-diagonal that normalises radii (r = 1 in the corners)."""
    return w / 2.0, h / 2.0, math.hypot(w / 2.0, h / 2.0)


def lens_distortion(arr: np.ndarray, k: float, ca: float) -> np.ndarray:
    """Barrel distortion (``k`` > 0) and lateral chromatic aberration: each output pixel samples
    the undistorted frame at radius r (1 + k r^2) / (1 + k) (r = 1 in the corners, which stay
    put), red a little further out and blue a little further in (``ca`` is the red/blue shift at
    the corners as a share of the half-diagonal)."""
    h, w = arr.shape[:2]
    cx, cy, half = _radial(w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx + 0.5 - cx) / half, (yy + 0.5 - cy) / half
    r2 = dx * dx + dy * dy
    out = np.empty_like(arr)
    for c, shift in enumerate((1.0 + ca, 1.0, 1.0 - ca)):
        f = (1.0 + k * r2) / (1.0 + k) * shift
        sx = np.clip(cx + dx * f * half - 0.5, 0, w - 1)
        sy = np.clip(cy + dy * f * half - 0.5, 0, h - 1)
        x0, y0 = np.floor(sx).astype(np.int32), np.floor(sy).astype(np.int32)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = sx - x0, sy - y0
        ch = arr[..., c]
        top = ch[y0, x0] * (1 - fx) + ch[y0, x1] * fx
        bot = ch[y1, x0] * (1 - fx) + ch[y1, x1] * fx
        out[..., c] = top * (1 - fy) + bot * fy
    return out


def distort_point(x: float, y: float, w: int, h: int, k: float) -> tuple[float, float]:
    """Where a point of the undistorted frame lands after :func:`lens_distortion`."""
    cx, cy, half = _radial(w, h)
    px, py = (x - cx) / half, (y - cy) / half
    qx, qy = px, py
    for _ in range(20):  # solve q (1 + k |q|^2) / (1 + k) = p by fixed-point iteration (|k| small)
        f = (1.0 + k * (qx * qx + qy * qy)) / (1.0 + k)
        qx, qy = px / f, py / f
    return cx + qx * half, cy + qy * half


def distort_box(box: list[float], w: int, h: int, k: float) -> list[float]:
    """The distorted frame's box around a box of the undistorted frame (edges sampled)."""
    x0, y0, x1, y1 = box
    ts = np.linspace(0.0, 1.0, 9)
    edge = [(x0 + t * (x1 - x0), y) for t in ts for y in (y0, y1)]
    edge += [(x, y0 + t * (y1 - y0)) for t in ts for x in (x0, x1)]
    pts = [distort_point(x, y, w, h, k) for x, y in edge]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [
        round(max(0.0, min(xs)), 2),
        round(max(0.0, min(ys)), 2),
        round(min(float(w), max(xs)), 2),
        round(min(float(h), max(ys)), 2),
    ]


def distort_facts(facts: Mapping[str, Any], post: Mapping[str, Any]) -> dict[str, Any]:
    """Render facts with every device box moved as the post-processing's lens distortion moves
    the pixels (unchanged when the plan has no distortion)."""
    out = dict(facts)
    k = float(post.get("distortion", 0.0))
    if k and facts.get("boxes"):
        w, h = int(facts["width"]), int(facts["height"])
        out["boxes"] = [{**b, "box": distort_box(list(b["box"]), w, h, k)} for b in facts["boxes"]]
    return out


def noise_sigma(gray: np.ndarray) -> float:
    """Standard deviation of an image's pixel noise (Immerkaer 1996: a Laplacian-difference
    filter that cancels smooth shading and edges, averaged over the image)."""
    g = gray.astype(np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = np.abs(cv2.filter2D(g, -1, kernel)[1:-1, 1:-1])
    return float(math.sqrt(math.pi / 2.0) * response.mean() / 6.0)


def phone_denoise(img: Image.Image, strength: float) -> Image.Image:
    """A phone's noise reduction: colour (Cb, Cr) blurred until no speckle is left, brightness (Y)
    smoothed by non-local means (flat sky and plaster come out clean, edges stay), ``strength``
    0..1, scaled by the noise measured in the image. It also removes the path tracer's
    low-sample noise; the sensor's own grain is added after it, as in a phone's pipeline."""
    y, cb, cr = img.convert("YCbCr").split()
    blur = ImageFilter.GaussianBlur(max(1.0, 1.5 * img.width / 512.0))
    if strength > 0:
        luma = np.asarray(y)
        h = min(20.0, max(3.0, (0.6 + strength) * noise_sigma(luma)))  # a phone adapts it to the ISO
        y = Image.fromarray(
            cv2.fastNlMeansDenoising(luma, None, h=h, templateWindowSize=5, searchWindowSize=13)
        )
    return Image.merge("YCbCr", (y, cb.filter(blur), cr.filter(blur))).convert("RGB")


def digital_zoom(img: Image.Image, factor: float) -> Image.Image:
    """The softness of a phone's digital zoom: detail of a ``factor`` times smaller crop,
    upscaled back (the frame's geometry is kept, so the boxes hold)."""
    small = (max(8, round(img.width / factor)), max(8, round(img.height / factor)))
    return img.resize(small, Image.Resampling.BILINEAR).resize(img.size, Image.Resampling.BICUBIC)


def phone_effects(img: Image.Image, post: Mapping[str, Any]) -> Image.Image:
    """Apply white balance, tone, blur/sharpening, motion blur, vignette and noise."""
    # phones denoise (smudging fine texture); it also hides the path tracer's low-sample noise:
    # colour speckle first (a phone's chroma noise reduction leaves none in daylight), then luma
    img = phone_denoise(img, post.get("denoise", 0.0))
    # phones render skies and colours punchier than Filmic's neutral look
    img = ImageEnhance.Color(img).enhance(post.get("saturation", 1.0))
    img = ImageEnhance.Contrast(img).enhance(post.get("contrast", 1.0))
    if post.get("zoom", 0) > 1.0:
        img = digital_zoom(img, post["zoom"])
    if post.get("blur", 0) > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(post["blur"]))
    if post.get("sharpen", 0) > 0:
        img = img.filter(ImageFilter.UnsharpMask(radius=1.2, percent=int(80 * post["sharpen"]), threshold=2))
    arr = np.asarray(img, dtype=np.float32)
    if post.get("distortion", 0) or post.get("ca", 0):
        arr = lens_distortion(arr, post.get("distortion", 0.0), post.get("ca", 0.0))
    # HDR tone mapping that still clips a bright sky: lift, then clip at white
    arr = np.minimum(arr * post.get("highlights", 1.0), 255.0)
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
        if background is None:
            img = im.convert("RGB")
        else:
            with Image.open(background) as photo:
                img = composite(im, photo)
    data = encode_jpeg(phone_effects(img, post), post.get("jpeg_quality", 85))
    out_jpg.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_jpg.with_suffix(".jpg.part")
    tmp.write_bytes(data)
    tmp.replace(out_jpg)
