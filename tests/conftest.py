"""Fixtures shared by the whole suite: where the real photos are, and tiny generated photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$CAMID_SHARED_DATA`` or ``<repo>/../shared/data`` (the real photo sets)."""
    return Path(os.environ.get("CAMID_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real photo sets; tests that need them skip, with the reason, where they are absent."""
    root = shared_data_dir()
    if not (root / "real" / "manifest.csv").is_file():
        pytest.skip(f"real photo sets not found at {root} (set CAMID_SHARED_DATA to ../shared/data)")
    return root


def make_photo(path: Path, size: tuple[int, int] = (96, 72), seed: int = 0, fmt: str = "JPEG") -> Path:
    """Write a small photo-like picture (smooth gradient + a coloured block + noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), np.full_like(xx, 128)], -1)
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    base[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(0, 256, 3)
    arr = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, fmt)
    return path
