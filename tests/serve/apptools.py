"""Helpers for the HTTP tests: settings around a tiny model, and multipart file tuples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serve.settings import Settings


def settings_for(model: Path, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: the given model, a private data dir, no .env file, no env leakage."""
    return Settings(_env_file=None, model_path=model, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


def files(*items: bytes | tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """``files=`` for httpx: each item is bytes (sent as photo.jpg) or (filename, bytes, content type)."""
    out = []
    for i, item in enumerate(items):
        name, data, ctype = item if isinstance(item, tuple) else (f"photo{i}.jpg", item, "image/jpeg")
        out.append(("image", (name, data, ctype)))
    return out
