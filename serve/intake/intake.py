"""One intake path for every channel: validate → limits → dedup → classify → store.

``POST /v1/submissions``, the ``/submit`` page, the IMAP inbox and the posts importer all call
:func:`take_in`, so each check (byte, pixel and decoded-size limits, blank and tiny photos, the
per-sender rate, exactly-once keys, sha256 and perceptual-hash duplicates) applies to all of them.
Blocking and CPU-bound: the HTTP routes run it in the inference pool.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from data.geo import valid_point
from data.images import ImageLimits
from serve.classify import decode_upload
from serve.engine import Engine, build_result
from serve.errors import ApiError
from serve.photos import DecodedPhoto
from serve.store import IntakeKey, NewSubmission, Store, Submission
from serve.store.models import utcnow

__all__ = [
    "AlreadyStored",
    "IntakeItem",
    "IntakeRules",
    "Intook",
    "follow_hash",
    "follow_location",
    "follow_status",
    "intake_key",
    "stored_under",
    "take_in",
]

SENDER_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class IntakeItem:
    """One photo from one person through one channel, with what the channel knows about it."""

    data: bytes
    source: str  # the channel ("email", "post", "submit") or what an API client says it is
    location: tuple[float, float] | None = None  # given by the sender (form, mail text, post geo)
    location_source: str = "form"
    note: str = ""
    sender_hash: str | None = None  # serve.intake.senders.hash_sender, never the address
    provenance: dict[str, Any] | None = None
    key: str | None = None  # exactly-once key (see intake_key); None: the API, every call stores
    follow: bool = False  # hand out a token to follow the submission's status
    index: int = 0  # the photo's position in its message or post, for error messages


@dataclass(frozen=True)
class IntakeRules:
    """The limits every channel applies: one photo's bytes and pixels, photos per sender a day."""

    image: ImageLimits
    per_sender_per_day: int = 30


@dataclass(frozen=True)
class Intook:
    """What :func:`take_in` stored: the submission's view, its follow token, the decoded photo."""

    view: dict[str, Any]
    photo: DecodedPhoto
    follow_token: str | None = None

    def created(self) -> dict[str, Any]:
        """The ``POST /v1/submissions`` answer: id, status, result, duplicate_of."""
        v = self.view
        return {
            "id": v["id"],
            "status": v["status"],
            "result": v["result"],
            "duplicate_of": v["duplicate_of"],
        }


class AlreadyStored(Exception):
    """The item's key was stored before (a mail or post seen again): nothing new was stored."""

    def __init__(self, submission_id: str) -> None:
        super().__init__(f"already stored as submission {submission_id}")
        self.submission_id = submission_id


def intake_key(channel: str, item_id: str, sha256: str) -> str:
    """The exactly-once key of one photo of one message or post (sha256 hex)."""
    return hashlib.sha256(f"{channel}\x00{item_id}\x00{sha256}".encode()).hexdigest()


def stored_under(store: Store, key: str) -> str | None:
    """The submission stored under an intake key, or None."""
    with store.session() as s:
        found = s.scalar(select(IntakeKey.submission_id).where(IntakeKey.key == key))
    return None if found is None else str(found)


def _check_sender(store: Store, sender_hash: str, most: int) -> None:
    since = utcnow() - SENDER_WINDOW
    with store.session() as s:
        sent = s.scalar(
            select(func.count())
            .where(Submission.sender_hash == sender_hash)
            .where(Submission.created_at >= since)
        )
    if (sent or 0) >= most:
        raise ApiError(
            429, "rate_limited", f"this sender sent {most} photos in the last 24 hours; the rest wait a day"
        )


def _classify(engine: Engine, photo: DecodedPhoto, location: dict[str, Any] | None) -> dict[str, Any]:
    (prediction,) = engine.classify([photo.image], sizes=[(photo.width, photo.height)])
    return build_result(
        prediction,
        engine.info,
        width=photo.width,
        height=photo.height,
        sha256=photo.sha256,
        phash=photo.phash,
        location=location,
    )


def take_in(engine: Engine, store: Store, item: IntakeItem, rules: IntakeRules) -> Intook:
    """Check, classify and store one photo; the submission's view and its follow token.

    Raises :class:`~serve.errors.ApiError` (4xx code and message) for a photo that is refused and
    :class:`AlreadyStored` when ``item.key`` was stored before; nothing is stored then.
    """
    if item.key is not None and (earlier := stored_under(store, item.key)) is not None:
        raise AlreadyStored(earlier)
    if item.sender_hash is not None:
        _check_sender(store, item.sender_hash, rules.per_sender_per_day)
    photo = decode_upload(item.data, index=item.index, limits=rules.image)
    location = photo.location
    if item.location is not None:
        lat, lon = item.location
        if valid_point(lat, lon) is None:
            raise ApiError(
                422,
                "invalid_location",
                f"{lat:g}, {lon:g} is no place: latitude between -90 and 90, longitude -180 to 180",
            )
        location = {"lat": lat, "lon": lon, "source": item.location_source}
    result = _classify(engine, photo, location)
    token = secrets.token_urlsafe(18) if item.follow else None
    new = NewSubmission(
        image=photo.image,
        sha256=photo.sha256,
        phash=photo.phash,
        result=result,
        lat=location["lat"] if location else None,
        lon=location["lon"] if location else None,
        location_source=location["source"] if location else None,
        source=item.source,
        note=item.note,
        sender_hash=item.sender_hash,
        provenance=item.provenance,
        follow_hash=None if token is None else follow_hash(token),
        intake_key=item.key,
    )
    try:
        view = store.add_submission(new)
    except IntegrityError:
        if item.key is not None and (earlier := stored_under(store, item.key)) is not None:
            raise AlreadyStored(earlier) from None  # another process stored it meanwhile
        raise
    return Intook(view=view, photo=photo, follow_token=token)


def follow_hash(token: str) -> str:
    """What the store keeps of a follow token: its sha256 (the token is 18 random bytes)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def follow_status(store: Store, token: str) -> dict[str, str] | None:
    """The status a follow token may see (status and the day it was received), or None."""
    with store.session() as s:
        row = s.execute(
            select(Submission.status, Submission.created_at).where(
                Submission.follow_hash == follow_hash(token)
            )
        ).first()
    if row is None:
        return None
    return {"status": str(row.status), "received": row.created_at.date().isoformat()}


def follow_location(store: Store, token: str, lat: float, lon: float) -> bool | None:
    """Give a pending submission without a location the one its sender adds afterwards (phones
    often strip the GPS from photos sent through a browser). True when set, False when the
    submission already has a location or is no longer pending, None for an unknown token."""
    with store.session(write=True) as s:
        found = s.scalar(select(Submission.id).where(Submission.follow_hash == follow_hash(token)))
        if found is None:
            return None
        changed = s.execute(
            update(Submission)
            .where(Submission.id == found, Submission.lat.is_(None), Submission.status == "pending")
            .values(lat=lat, lon=lon, location_source="form", updated_at=utcnow())
        )
    return bool(getattr(changed, "rowcount", 0))
