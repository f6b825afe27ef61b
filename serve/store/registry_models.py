"""ORM models of the camera registry (#16): physical cameras, the photos (and boxes) that show
them, the audit trail of attach/merge/split, and the imported official list.

Created by migration 0005 (``serve/migrations/versions/0005_registry.py``); declared on the
store's one :class:`~serve.store.models.Base`, so ``tests/serve/test_store.py`` checks that the two
agree. The registry's logic lives in :mod:`serve.registry`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from serve.store.models import Base, UTCDateTime, utcnow

CAMERA_STATUSES: tuple[str, ...] = ("active", "removed", "disputed", "merged")
MOUNTS: tuple[str, ...] = ("pole", "wall", "mast")


class Camera(Base):
    """One physical device. ``lat``/``lon`` are refined from its verified photos' locations
    (their mean; ``spread_m`` the farthest photo from it, ``radius_m`` the uncertainty shown).
    A camera merged into another keeps its row (status ``merged``, ``merged_into``) so its id
    still resolves."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), index=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    spread_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    radius_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    mount: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    merged_into: Mapped[str | None] = mapped_column(String(40), ForeignKey("cameras.id"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CameraPhoto(Base):
    """One box of one submission showing a camera (``box`` None: the whole photo, for photos
    verified without boxes). A submission's box is in exactly one camera; deleting the submission
    (erasure) removes its rows."""

    __tablename__ = "camera_photos"
    __table_args__ = (UniqueConstraint("submission_id", "box_index", name="uq_camera_photos_submission_box"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(40), ForeignKey("cameras.id"), index=True)
    submission_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    box_index: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(64))
    box: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attached_by: Mapped[str] = mapped_column(String(128))


class CameraEvent(Base):
    """The audit trail of the registry: who did what to which camera, when (append-only).

    ``action``: create, attach, detach, merge, split, update. No foreign keys: the trail outlives
    erased submissions."""

    __tablename__ = "camera_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    camera_id: Mapped[str] = mapped_column(String(40), index=True)
    other_camera_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    submission_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class OfficialCamera(Base):
    """One entry of the official (police) list, as imported by ``camid registry import-official``."""

    __tablename__ = "official_cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
