"""The moderation store: :func:`open_store` migrates the database, sweeps orphans, returns a Store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from data.labels import LabelSet
from serve.store.models import Base, Moderator, Review, Submission
from serve.store.photos import PhotoStore
from serve.store.store import (
    ConflictError,
    ModeratorInfo,
    NewSubmission,
    NotFoundError,
    ReviewError,
    Store,
    create_db_engine,
)

__all__ = [
    "Base",
    "ConflictError",
    "Moderator",
    "ModeratorInfo",
    "NewSubmission",
    "NotFoundError",
    "PhotoStore",
    "Review",
    "ReviewError",
    "Store",
    "Submission",
    "migrate",
    "open_store",
    "store_url",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
# Orphan photos younger than this survive the startup sweep on a shared (PostgreSQL) deployment,
# where another replica may be between writing a photo and committing its row.
SHARED_SWEEP_GRACE_S = 600.0
_PG_MIGRATION_LOCK = 0x63616D6964  # "camid": one replica migrates at a time


class StoreSettings(Protocol):
    """The two settings the store reads (``serve.settings.Settings`` has them)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def database_url(self) -> str | None: ...


def store_url(settings: StoreSettings) -> str:
    """The database URL: ``database_url``, else a SQLite file in ``data_dir``."""
    return settings.database_url or f"sqlite:///{(Path(settings.data_dir) / 'camid.sqlite3').as_posix()}"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` (``alembic upgrade head``), one process at a time."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.execution_options(write=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_store(settings: StoreSettings, labels: LabelSet | None) -> Store:
    """Connect, migrate, sweep orphan photos and return the store (the app keeps it on app.state).

    ``labels`` are the loaded model's classes (``engine.info.labels``): reviews may use only those.
    """
    url = store_url(settings)
    engine = create_db_engine(url)
    migrate(engine)
    store = Store(engine, Path(settings.data_dir), labels)
    store.sweep(grace_s=0.0 if store.is_sqlite else SHARED_SWEEP_GRACE_S)
    log.info("store: %s, photos in %s", engine.url.render_as_string(hide_password=True), store.photos.root)
    return store
