"""SQLAlchemy 2.x typed ORM models of the moderation store: submissions, reviews, moderators, deletions.

The schema itself is created by the Alembic migrations in ``serve/migrations``; these classes
must match them (``tests/serve/test_store.py`` checks that the two agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the moderation store."""


class Moderator(Base):
    """A person allowed to review submissions; only the sha256 of their token is kept."""

    __tablename__ = "moderators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Submission(Base):
    """One citizen photo with the model's verdict at submission time and its moderation state.

    ``status``, ``final_label``, ``boxes`` and ``revision`` are derived from the latest review and
    are updated in the same transaction that appends it (``revision`` = number of reviews).
    ``width``/``height`` are the upright original photo's, the pixels every box is given in.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_status_decision", "status", "decision"),
        Index("ix_submissions_lat_lon", "lat", "lon"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    phash: Mapped[str] = mapped_column(String(16))
    photo: Mapped[str] = mapped_column(String(255))  # relative to <data_dir>/photos
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64), index=True)  # the model's top label
    confidence: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    probabilities: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # the full classification result
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    source: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    duplicate_of: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("submissions.id"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    final_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the verified boxes [{"label", "box": [x0, y0, x1, y1]}]; None until a review set them
    boxes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the public camera this verified photo shows, ``cam-<id of the first submission of it>``; it
    # stays with the other photos of the camera when that first one is rejected or deleted
    camera_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    # a moderator's lease on the item (their name and when it runs out); None when unclaimed
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # intake (#13): the sender as a keyed hash (never in clear), where the photo came from (post
    # URL and time, mail date), the sha256 of the citizen's follow token
    sender_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    follow_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)

    reviews: Mapped[list[Review]] = relationship(
        back_populates="submission", order_by="Review.revision", lazy="selectin"
    )


class Review(Base):
    """One moderator decision; append-only. ``revision`` is the submission revision it created."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("submission_id", "revision", name="uq_reviews_submission_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(String(32), ForeignKey("submissions.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    moderator_id: Mapped[int] = mapped_column(Integer, ForeignKey("moderators.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verdict: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    model_label: Mapped[str] = mapped_column(String(64))
    model_confidence: Mapped[float] = mapped_column(Float)
    # the model whose verdict the moderator saw (null: reviewed before versions were kept)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    boxes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)  # what it verified

    submission: Mapped[Submission] = relationship(back_populates="reviews")
    moderator: Mapped[Moderator] = relationship(lazy="joined")


class Deletion(Base):
    """The audit row of one deleted submission: who, when, why; never the photo or its metadata."""

    __tablename__ = "deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(String(32), index=True)  # no foreign key: the row is gone
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_by: Mapped[str] = mapped_column(String(128))  # a moderator's name, "cli:<user>" or "retention"
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # the submission's status when it was deleted
    photo_removed: Mapped[bool] = mapped_column(Boolean)  # False: another submission sent the same bytes


class Verdict(Base):
    """A model verdict a submission had before re-scoring replaced it (the current one is on the
    submission); kept for the audit trail, removed with the submission."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # the full classification result it had


class ShadowVerdict(Base):
    """What a shadow model (a candidate run beside the live one) said about a submission; never
    used for decisions, only for the report of where the two disagree."""

    __tablename__ = "shadow_verdicts"
    __table_args__ = (
        UniqueConstraint(
            "submission_id", "model_name", "model_version", name="uq_shadow_verdicts_submission_model"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)


class IntakeKey(Base):
    """One item a channel has stored (a mail's attachment, a post's photo): never stored twice.

    ``key`` hashes the channel, the item's own id (Message-ID, post URL) and the photo's sha256;
    the row is written in the transaction that stores the submission.
    """

    __tablename__ = "intake_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    submission_id: Mapped[str] = mapped_column(String(32), index=True)  # no foreign key: erasure keeps it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
