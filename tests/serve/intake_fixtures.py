"""Fixtures for the intake tests: a channel (tiny model + store) and photos in several formats."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from data.images import ImageLimits
from serve.engine import Engine
from serve.intake.channel import Channel
from serve.intake.intake import IntakeRules
from serve.intake.senders import sender_key
from serve.store import Store


def street_photo(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (160, 120)) -> bytes:
    """A small photo-like picture (coarse random blocks) in ``fmt`` (JPEG, PNG, HEIF)."""
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
    rng = np.random.default_rng(seed)
    w, h = size
    arr = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    img = Image.fromarray(arr).resize((w, h), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, fmt, quality=90) if fmt != "PNG" else img.save(buf, fmt)
    return buf.getvalue()


def make_channel(store: Store, engine: Engine, **rules: Any) -> Channel:
    """A channel on ``store`` with the given intake rules (``max_bytes``, ``per_sender_per_day``)."""
    max_bytes = rules.pop("max_bytes", 25_000_000)
    limits = ImageLimits(max_bytes=max_bytes, max_pixels=50_000_000, max_decoded_bytes=160_000_000)
    return Channel(engine, store, IntakeRules(image=limits, **rules), sender_key(store.data_dir))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: Any) -> Iterator[Engine]:
    """The tiny test model loaded once."""
    yield Engine.load(tiny_model.onnx)


def heic_with_gps() -> bytes:
    """An iPhone-style HEIC photo whose EXIF holds a GPS position (44.81 N, 20.46 E)."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from tests.serve.moderation_fixtures import photo_bytes

    img = Image.open(io.BytesIO(photo_bytes(3, (160, 120), exif_gps=True)))
    buf = io.BytesIO()
    img.save(buf, "HEIF", exif=img.getexif().tobytes())
    return buf.getvalue()
