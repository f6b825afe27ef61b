"""The moderation store: :func:`open_store` migrates the database, sweeps orphans, returns a Store."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, make_url

from data.files import atomic_write
from data.labels import LabelSet
from serve.store.models import Base, Deletion, IntakeKey, Moderator, Review, Submission, utcnow
from serve.store.photos import PhotoStore
from serve.store.queue import CursorError, ReviewPolicy
from serve.store.registry_models import Camera, CameraEvent, CameraPhoto, OfficialCamera
from serve.store.store import (
    ClaimedError,
    ConflictError,
    ModeratorInfo,
    NewSubmission,
    NotFoundError,
    Page,
    ReviewError,
    Store,
    create_db_engine,
)

__all__ = [
    "Base",
    "Camera",
    "CameraEvent",
    "CameraPhoto",
    "ClaimedError",
    "ConflictError",
    "CursorError",
    "Deletion",
    "IntakeKey",
    "Moderator",
    "ModeratorInfo",
    "NewSubmission",
    "NotFoundError",
    "OfficialCamera",
    "Page",
    "PhotoStore",
    "Review",
    "ReviewError",
    "ReviewPolicy",
    "Store",
    "Submission",
    "describe_store",
    "migrate",
    "open_store",
    "server_marker",
    "shown_url",
    "store_url",
    "write_server_marker",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
# Orphan photos younger than this survive the startup sweep on a shared (PostgreSQL) deployment,
# where another replica may be between writing a photo and committing its row.
SHARED_SWEEP_GRACE_S = 600.0
_PG_MIGRATION_LOCK = 0x63616D6964  # "camid": one replica migrates at a time
SERVER_MARKER = "server.json"


class StoreSettings(Protocol):
    """The two settings the store reads (``serve.settings.Settings`` has them)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def database_url(self) -> str | None: ...


def store_url(settings: StoreSettings) -> str:
    """The database URL: ``database_url``, else a SQLite file in ``data_dir``; SQLite paths absolute."""
    url = settings.database_url or f"sqlite:///{(Path(settings.data_dir) / 'camid.sqlite3').as_posix()}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_absolute():
        url = parsed.set(database=Path(parsed.database).resolve().as_posix()).render_as_string(
            hide_password=False
        )
    return url


def shown_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def describe_store(settings: StoreSettings) -> str:
    """Which database and data folder ``settings`` name, for commands to print before they act."""
    return f"database {shown_url(store_url(settings))}, data folder {Path(settings.data_dir).resolve()}"


def write_server_marker(store: Store) -> Path:
    """Note in ``<data_dir>/server.json`` which database the server uses with this data folder.

    ``camid moderators`` reads it (:func:`server_marker`) to refuse handing out tokens for a
    database that the server using this folder does not read.
    """
    marker = store.data_dir / SERVER_MARKER
    facts = {
        "database": shown_url(store.engine.url.render_as_string(hide_password=False)),
        "data_dir": str(store.data_dir.resolve()),
        "started_at": utcnow().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    text = json.dumps(facts, indent=2) + "\n"
    return atomic_write(marker, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode=0o600)


def server_marker(data_dir: Path) -> dict[str, Any] | None:
    """What the last server started on ``data_dir`` wrote in ``server.json``; None when none did."""
    try:
        facts = json.loads((data_dir / SERVER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Apply the Alembic migrations up to ``revision`` (``alembic upgrade heads``: every branch), one
    process at a time."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.execution_options(write=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_store(settings: StoreSettings, labels: LabelSet | None, policy: ReviewPolicy | None = None) -> Store:
    """Connect, migrate, sweep orphan photos and return the store (the app keeps it on app.state).

    ``labels`` are the loaded model's classes (``engine.info.labels``): reviews may use only those.
    """
    url = store_url(settings)
    engine = create_db_engine(url)
    migrate(engine)
    store = Store(engine, Path(settings.data_dir).resolve(), labels, policy)
    store.sweep(grace_s=0.0 if store.is_sqlite else SHARED_SWEEP_GRACE_S)
    log.info("store: database %s, data folder %s", shown_url(url), store.data_dir)
    return store
