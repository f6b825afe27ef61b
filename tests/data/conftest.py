"""Fixtures for the data-layer tests: small, smooth photos whose pHash survives re-encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_photo(path: Path, seed: int, size: int = 48, fmt: str = "JPEG") -> Path:
    """A random low-frequency picture: distinct seeds give unrelated pHashes, re-encodes near ones."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    coarse.resize((size, size), Image.Resampling.BICUBIC).save(path, fmt)
    return path


def reencoded(src: Path, dst: Path, scale: float = 1.5, quality: int = 60) -> Path:
    """The same picture resized and saved again (different bytes, same look)."""
    img = Image.open(src).convert("RGB")
    dst.parent.mkdir(parents=True, exist_ok=True)
    img.resize((round(img.width * scale), round(img.height * scale))).save(dst, "JPEG", quality=quality)
    return dst
