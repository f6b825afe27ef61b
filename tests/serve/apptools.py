"""Helpers for the HTTP tests: settings around a tiny model, and multipart file tuples."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from serve.settings import Settings


def settings_for(model: Path, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: the given model, a private data dir, no .env file, no env leakage.

    ``/v1/classify`` is not rate-limited unless ``classify_per_minute`` is given.
    """
    overrides.setdefault("classify_per_minute", 100_000)
    return Settings(_env_file=None, model_path=model, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


def files(*items: bytes | tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """``files=`` for httpx: each item is bytes (sent as photo.jpg) or (filename, bytes, content type)."""
    out = []
    for i, item in enumerate(items):
        name, data, ctype = item if isinstance(item, tuple) else (f"photo{i}.jpg", item, "image/jpeg")
        out.append(("image", (name, data, ctype)))
    return out


class GatedEngine:
    """The real engine, but ``classify`` waits for ``gate``: holds the inference queue full (tests only)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.info, self.gate = engine, engine.info, threading.Event()
        self.min_side = engine.min_side

    def classify(self, images: Any, heatmap: bool = False, **kwargs: Any) -> Any:
        self.gate.wait(10)
        return self.engine.classify(images, heatmap=heatmap, **kwargs)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
