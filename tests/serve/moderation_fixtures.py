"""Fixtures for the moderation tests: a store on SQLite (always) and PostgreSQL (when configured).

PostgreSQL runs when ``CAMID_TEST_POSTGRES_URL`` names a server and a role that may create
databases, e.g. ``postgresql+psycopg://postgres:camid@127.0.0.1:5432/postgres``; every test gets
a fresh database that is dropped afterwards. Import the fixtures into a test module with
``from tests.serve.moderation_fixtures import ...``.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from data.dedup import phash, sha256_bytes
from data.labels import load_labels
from serve.store import NewSubmission, Store, open_store

POSTGRES_ENV = "CAMID_TEST_POSTGRES_URL"
LABELS = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")


def photo_bytes(seed: int, size: tuple[int, int] = (64, 48), exif_gps: bool = False) -> bytes:
    """A small distinct JPEG (optionally with an EXIF GPS block and a camera model tag)."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    img = Image.fromarray(arr).resize((w, h), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0110] = "SecretPhone 9"  # Model
    if exif_gps:
        gps = exif.get_ifd(0x8825)
        gps.update({1: "N", 2: (44.0, 48.0, 36.0), 3: "E", 4: (20.0, 27.0, 36.0)})
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def _probabilities(label: str, confidence: float) -> list[dict[str, Any]]:
    rest = [name for name in LABELS if name != label]
    share = (1.0 - confidence) / len(rest)
    return [{"label": label, "score": confidence}] + [{"label": n, "score": share} for n in rest]


def fake_camera(
    box: list[float], label: str = "huawei_ipc6625_z30", confidence: float = 0.9
) -> dict[str, Any]:
    """One entry of a result's ``cameras``: a box in the original photo's pixels and its class."""
    return {
        "box": box,
        "label": label,
        "confidence": confidence,
        "probabilities": _probabilities(label, confidence),
    }


def fake_result(
    label: str = "huawei_ipc6625_z30",
    confidence: float = 0.9,
    decision: str = "flag",
    cameras: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A classification result shaped like the engine's, without running a model.

    Without ``cameras`` it has no ``cameras`` key, like the results stored before localization.
    """
    result: dict[str, Any] = {
        "label": label,
        "confidence": confidence,
        "decision": decision,
        "probabilities": _probabilities(label, confidence),
        "model": {"name": "camid-test", "version": "0.0.1"},
    }
    if cameras is not None:
        result["cameras"] = cameras
    return result


def new_submission(
    seed: int,
    *,
    data: bytes | None = None,
    lat: float | None = None,
    lon: float | None = None,
    **result: Any,
) -> NewSubmission:
    """A NewSubmission from a generated (or given) photo."""
    data = data if data is not None else photo_bytes(seed)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    res = fake_result(**result)
    res["image"] = {
        "width": img.width,
        "height": img.height,
        "sha256": sha256_bytes(data),
        "phash": phash(img),
    }
    return NewSubmission(
        image=img,
        sha256=sha256_bytes(data),
        phash=phash(img),
        result=res,
        lat=lat,
        lon=lon,
        location_source=None if lat is None else "form",
    )


def _postgres_database(admin_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, make_url

    name = f"camid_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (SQLite in the data folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (see docs/moderation.md)")
    yield from _postgres_database(admin_url)


@pytest.fixture
def store_settings(tmp_path: Path, database_url: str | None) -> SimpleNamespace:
    """The two settings the store reads."""
    return SimpleNamespace(data_dir=tmp_path / "var", database_url=database_url)


@pytest.fixture
def store(store_settings: SimpleNamespace) -> Iterator[Store]:
    """An open, migrated, empty store."""
    s = open_store(store_settings, load_labels())
    try:
        yield s
    finally:
        s.close()
