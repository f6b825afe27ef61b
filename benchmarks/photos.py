"""Photo-like JPEGs for the benchmarks (torch-free): smooth sky/building gradients, blocks, fine
texture and sensor noise, so they compress and decode like phone photos (~4.5 MB at 12 MP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def phone_photo(path: Path, size: tuple[int, int], seed: int, quality: int = 92) -> Path:
    """A photo-like JPEG: smooth sky/building gradients, blocks, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    texture = np.asarray(
        Image.fromarray(rng.integers(0, 256, (h // 4, w // 4), dtype=np.uint8)).resize(
            (w, h), Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )
    img = base * 0.8 + (texture[..., None] - 128) * 0.35 + rng.normal(0, 5, (h, w, 1)).astype(np.float32)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)
    return path
