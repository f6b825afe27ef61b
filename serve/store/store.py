"""The moderation store: submissions, append-only reviews and moderator accounts in one database.

SQLite (WAL, busy timeout, ``BEGIN IMMEDIATE`` for writes) by default, PostgreSQL when the URL
says so. Reviews use optimistic concurrency: the client sends the revision it saw, the row is
updated only ``WHERE revision = :seen`` and a unique ``(submission_id, revision)`` backs it up, so
two moderators can never both win, and a review is never lost or stored twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from sqlalchemy import CursorResult, Engine, create_engine, delete, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from data.boxes import LabeledBox
from data.dedup import hamming
from data.geo import distance_m
from data.labels import LabelSet
from serve.store.models import Deletion, IntakeKey, Moderator, Review, Submission, utcnow
from serve.store.photos import PhotoStore
from serve.store.queue import Order, ReviewPolicy, after, encode_cursor, ordering

log = logging.getLogger(__name__)

Verdict = Literal["confirm", "correct", "reject"]
VERDICTS: tuple[str, ...] = ("confirm", "correct", "reject")
# awaiting_second: approved once while four-eyes publication is on, not public until a second
# moderator agrees
STATUSES: tuple[str, ...] = ("pending", "awaiting_second", "verified", "rejected")
MIN_BOX_PX = 1.0  # a box narrower or lower than a pixel of the original photo marks nothing
NEAR_PHASH_BITS = 6
NEAR_METRES = 50.0
CAMERA_RADIUS_M = 25.0  # a verified photo within this of a camera (same label) shows that camera
MAX_REASON = 2000
_M_PER_DEG_LAT = 111_320.0


class NotFoundError(LookupError):
    """No submission (or moderator) with that id or name."""


class ReviewError(ValueError):
    """A review that contradicts itself (unknown label, confirm with another label, …)."""


class ConflictError(RuntimeError):
    """The client reviewed a stale revision; ``current`` is the submission as it is now."""

    def __init__(self, message: str, current: dict[str, Any]) -> None:
        super().__init__(message)
        self.current = current


class ClaimedError(RuntimeError):
    """Another moderator holds the item's claim (``claimed_by`` until ``claimed_until``)."""

    def __init__(self, submission_id: str, claimed_by: str, claimed_until: datetime) -> None:
        super().__init__(
            f"{claimed_by} is reviewing submission {submission_id} (claimed until "
            f"{_iso(claimed_until)}); pick another item or wait for the claim to run out"
        )
        self.claimed_by = claimed_by
        self.claimed_until = claimed_until


@dataclass(frozen=True)
class Page:
    """One page of the queue, the total matching the filters, and the cursor of the next page."""

    items: list[dict[str, Any]]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class NewSubmission:
    """What :meth:`Store.add_submission` needs: the decoded photo, its hashes and the model's result."""

    image: Image.Image
    sha256: str
    phash: str
    result: dict[str, Any]
    lat: float | None = None
    lon: float | None = None
    location_source: str | None = None
    source: str = ""
    note: str = ""
    sender_hash: str | None = None  # intake (#13): a keyed hash of the sender, never the address
    provenance: dict[str, Any] | None = None  # post URL and time, mail date…
    follow_hash: str | None = None  # sha256 of the token the citizen follows the status with
    intake_key: str | None = None  # stored with the row; a second add with it is an IntegrityError


@dataclass(frozen=True)
class ModeratorInfo:
    """A moderator account as the API and CLI see it (never the token)."""

    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_token() -> str:
    """A fresh moderator token: ``camid_`` and 32 random bytes."""
    return "camid_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 hex of a bearer token (tokens are 32 random bytes, so no salt or KDF is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=24
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a writer waits (busy_timeout) instead of
        # failing with SQLITE_BUSY when it upgrades a read transaction.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by the owner only; tighten existing ones.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.is_file() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite tuned for concurrent writers, anything else as is."""
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:"):
            raise ValueError("an in-memory SQLite database cannot be shared; give a file path")
        _private_sqlite_file(Path(url.split("///", 1)[-1]))
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=24)


class Store:
    """Submissions, reviews and moderators in one database, photos in one folder."""

    def __init__(
        self, engine: Engine, data_dir: Path, labels: LabelSet | None, policy: ReviewPolicy | None = None
    ) -> None:
        """``labels``: the loaded model's classes (from its contract), the ones reviews may use;
        ``None`` for tools that never review (the moderator-token command). ``policy``: four-eyes
        publication and the claim lease (default: one moderator publishes, 10-minute claims)."""
        self.engine = engine
        self.policy = policy or ReviewPolicy()
        self.data_dir = data_dir
        self.photos = PhotoStore(data_dir)
        self._labels = labels
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(engine.execution_options(write=True), expire_on_commit=False)

    @property
    def labels(self) -> LabelSet:
        """The loaded model's classes; a store opened without them cannot review or export."""
        if self._labels is None:
            raise ReviewError("this store was opened without a model's labels: it cannot take reviews")
        return self._labels

    def use_labels(self, labels: LabelSet) -> None:
        """Take reviews with ``labels`` from now on (the server switched to a model with them)."""
        self._labels = labels

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        maker = self._writer if write else self._read
        with maker() as s, s.begin():
            yield s

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self.session() as s:
                s.execute(select(1))
            return True
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            log.exception("store: database unreachable")
            return False

    # -- submissions ------------------------------------------------------------------------------

    def add_submission(self, new: NewSubmission) -> dict[str, Any]:
        """Store the photo (once per sha256) and a pending submission; returns its JSON view."""
        rel, written = self.photos.put(new.sha256, new.image)
        try:
            with self.session(write=True) as s:
                sub = self._new_row(s, new, rel)
                s.add(sub)
                s.flush()
                if new.intake_key is not None:  # same transaction: stored once, or not at all
                    s.add(IntakeKey(key=new.intake_key, submission_id=sub.id, created_at=utcnow()))
                    s.flush()
                view = submission_json(sub, [])
        except BaseException:
            if written:
                self._remove_if_unreferenced(rel)
            raise
        return view

    def _new_row(self, s: Session, new: NewSubmission, rel: str) -> Submission:
        result = new.result
        model = result.get("model") or {}
        image = result.get("image") or {}
        return Submission(
            id=uuid.uuid4().hex[:16],
            created_at=utcnow(),
            updated_at=utcnow(),
            sha256=new.sha256,
            phash=new.phash,
            photo=rel,
            width=int(image.get("width") or new.image.width),
            height=int(image.get("height") or new.image.height),
            model_name=str(model.get("name", "")),
            model_version=str(model.get("version", "")),
            label=str(result["label"]),
            confidence=float(result["confidence"]),
            decision=str(result["decision"]),
            probabilities=list(result.get("probabilities") or []),
            result=result,
            lat=new.lat,
            lon=new.lon,
            location_source=new.location_source,
            source=new.source,
            note=new.note,
            sender_hash=new.sender_hash,
            provenance=new.provenance,
            follow_hash=new.follow_hash,
            duplicate_of=self._find_duplicate(s, new),
            status="pending",
            final_label=None,
            revision=0,
        )

    def _find_duplicate(self, s: Session, new: NewSubmission) -> str | None:
        """The first submission this one repeats: same bytes, or a look-alike taken within 50 m."""
        same = s.execute(
            select(Submission.id, Submission.duplicate_of)
            .where(Submission.sha256 == new.sha256)
            .order_by(Submission.created_at)
            .limit(1)
        ).first()
        if same is not None:
            return str(same.duplicate_of or same.id)
        if new.lat is None or new.lon is None:
            return None
        dlat = NEAR_METRES / _M_PER_DEG_LAT
        dlon = dlat / max(math.cos(math.radians(new.lat)), 1e-6)
        rows = s.execute(
            select(Submission.id, Submission.duplicate_of, Submission.phash, Submission.lat, Submission.lon)
            .where(Submission.lat.between(new.lat - dlat, new.lat + dlat))
            .where(Submission.lon.between(new.lon - dlon, new.lon + dlon))
            .order_by(Submission.created_at)
            .limit(1000)
        ).all()
        for row in rows:
            near = hamming(row.phash, new.phash) <= NEAR_PHASH_BITS
            if near and distance_m(new.lat, new.lon, row.lat, row.lon) <= NEAR_METRES:
                return str(row.duplicate_of or row.id)
        return None

    def _remove_if_unreferenced(self, rel: str) -> None:
        try:
            with self.session() as s:
                used = s.scalar(select(func.count()).where(Submission.photo == rel))
        except Exception:  # noqa: BLE001 - the DB is failing; the startup sweep will clean up
            log.exception("store: cannot check %s after a failed write; the next sweep removes it", rel)
            return
        if not used:
            self.photos.remove(rel)

    def get(self, submission_id: str) -> dict[str, Any]:
        """One submission with its reviews and duplicates; NotFoundError when absent."""
        with self.session() as s:
            sub = s.get(Submission, submission_id)
            if sub is None:
                raise NotFoundError(f"no submission {submission_id!r}")
            dups = s.scalars(
                select(Submission.id).where(Submission.duplicate_of == sub.id).order_by(Submission.created_at)
            ).all()
            return submission_json(sub, sub.reviews, duplicates=list(dups))

    def photo_path(self, submission_id: str) -> Path:
        """The stored (unblurred) photo of a submission, for moderators only."""
        with self.session() as s:
            rel = s.scalar(select(Submission.photo).where(Submission.id == submission_id))
        if rel is None:
            raise NotFoundError(f"no submission {submission_id!r}")
        return self.photos.path(rel)

    def list_submissions(
        self,
        *,
        status: str | None = None,
        decision: str | None = None,
        label: str | None = None,
        order: Order = "uncertainty",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of submissions (no reviews) and the total that match the filters."""
        page = self.page(
            status=status, decision=decision, label=label, order=order, limit=limit, offset=offset
        )
        return page.items, page.total

    def page(
        self,
        *,
        status: str | None = None,
        decision: str | None = None,
        label: str | None = None,
        order: Order = "uncertainty",
        limit: int = 50,
        offset: int = 0,
        cursor: str | None = None,
        unclaimed_for: str | None = None,
    ) -> Page:
        """A page of the queue after ``cursor`` (keyset: never skips items when others leave the set).

        ``unclaimed_for``: leave out the items another moderator than this one holds a claim on.
        ``total`` counts every match, cursor or not. :class:`CursorError` for a foreign cursor.
        """
        query = select(Submission)
        if status:
            query = query.where(Submission.status == status)
        if decision:
            query = query.where(Submission.decision == decision)
        if label:
            query = query.where(func.coalesce(Submission.final_label, Submission.label) == label)
        if unclaimed_for is not None:
            free = or_(
                Submission.claimed_by.is_(None),
                Submission.claimed_by == unclaimed_for,
                Submission.claimed_until < utcnow(),
            )
            query = query.where(free)
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            if cursor:
                query = query.where(after(cursor, order))
            rows = s.scalars(query.order_by(*ordering(order)).limit(limit + 1).offset(offset)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1], order) if more and rows else None
            return Page([submission_json(r, None) for r in rows], int(total), next_cursor)

    # -- claims -----------------------------------------------------------------------------------

    def claim(self, submission_id: str, moderator: str) -> dict[str, Any]:
        """Give ``moderator`` the item for ``policy.claim_s`` seconds (renewing their own claim);
        :class:`ClaimedError` when someone else's claim has not run out."""
        now = utcnow()
        until = now + timedelta(seconds=self.policy.claim_s)
        with self.session(write=True) as s:
            done: CursorResult[Any] = s.execute(  # type: ignore[assignment]
                update(Submission)
                .where(Submission.id == submission_id)
                .where(
                    or_(
                        Submission.claimed_by.is_(None),
                        Submission.claimed_by == moderator,
                        Submission.claimed_until < now,
                    )
                )
                .values(claimed_by=moderator, claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:
                sub = s.get(Submission, submission_id)
                if sub is None:
                    raise NotFoundError(f"no submission {submission_id!r}")
                assert sub.claimed_by is not None and sub.claimed_until is not None
                raise ClaimedError(submission_id, sub.claimed_by, sub.claimed_until)
        return {"id": submission_id, "claimed_by": moderator, "claimed_until": _iso(until)}

    def release(self, submission_id: str, moderator: str) -> bool:
        """Drop ``moderator``'s claim on the item; False when they held none."""
        with self.session(write=True) as s:
            if s.get(Submission, submission_id) is None:
                raise NotFoundError(f"no submission {submission_id!r}")
            done: CursorResult[Any] = s.execute(  # type: ignore[assignment]
                update(Submission)
                .where(Submission.id == submission_id, Submission.claimed_by == moderator)
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            return done.rowcount == 1

    # -- reviews ----------------------------------------------------------------------------------

    def review(
        self,
        submission_id: str,
        *,
        moderator_id: int,
        verdict: str,
        label: str | None,
        note: str = "",
        revision: int,
        boxes: Sequence[LabeledBox] | None = None,
    ) -> dict[str, Any]:
        """Append a review made on ``revision``; ConflictError when someone reviewed it since.

        ``boxes`` (pixels of the upright original photo) are the cameras the moderator verified;
        a confirm without them keeps the model's boxes, a correct without them keeps none.
        """
        if verdict not in VERDICTS:
            raise ReviewError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        try:
            with self.session(write=True) as s:
                sub = s.get(Submission, submission_id)
                if sub is None:
                    raise NotFoundError(f"no submission {submission_id!r}")
                if sub.revision == revision:
                    self._check_claim(s, sub, moderator_id)
                    kept = self._review_boxes(sub, verdict, boxes)
                    return self._append_review(s, sub, moderator_id, verdict, label, note, kept)
        except IntegrityError:
            log.info("review of %s at revision %d lost a race", submission_id, revision)
        current = self.get(submission_id)
        raise ConflictError(
            f"submission {submission_id} is at revision {current['revision']}, not {revision}; "
            "reload it and review again",
            current,
        )

    def _check_claim(self, s: Session, sub: Submission, moderator_id: int) -> None:
        """ClaimedError when another moderator holds a claim on ``sub`` that has not run out."""
        if sub.claimed_by is None or sub.claimed_until is None or sub.claimed_until < utcnow():
            return
        me = s.get(Moderator, moderator_id)
        if me is None or me.name != sub.claimed_by:
            raise ClaimedError(sub.id, sub.claimed_by, sub.claimed_until)

    def _next_status(self, sub: Submission, verdict: str, moderator_id: int, final: str | None) -> str:
        """``verified`` at once, or with four eyes only when a second moderator agrees with the label
        an earlier approval gave; a first approval (or a disagreeing one) waits in ``awaiting_second``."""
        if verdict == "reject":
            return "rejected"
        if not self.policy.four_eyes:
            return "verified"
        approved = sub.status in ("awaiting_second", "verified") and sub.reviews
        if approved and sub.reviews[-1].moderator_id != moderator_id and final == sub.final_label:
            return "verified"
        return "awaiting_second"

    def _final_label(self, sub: Submission, verdict: str, label: str | None) -> str | None:
        if verdict == "reject":
            return None
        if label is not None and label not in self.labels:
            raise ReviewError(f"unknown label {label!r}; known labels: {', '.join(self.labels.names)}")
        if verdict == "confirm":
            if label is not None and label != sub.label:
                raise ReviewError(
                    f"confirm keeps the model's label {sub.label!r}; send verdict 'correct' to set {label!r}"
                )
            return sub.label
        if label is None:
            raise ReviewError("verdict 'correct' needs the right label in 'label'")
        return label

    def _review_boxes(
        self, sub: Submission, verdict: str, boxes: Sequence[LabeledBox] | None
    ) -> list[dict[str, Any]] | None:
        """The boxes a review keeps: the moderator's (checked against the photo and the labels),
        the model's on a confirm without boxes, none on a reject."""
        if verdict == "reject":
            if boxes:
                raise ReviewError("a rejected photo keeps no boxes; send 'boxes' with confirm or correct")
            return None
        if boxes is None:
            return model_boxes(sub) if verdict == "confirm" else None
        for i, b in enumerate(boxes):
            if b.label not in self.labels:
                known = ", ".join(self.labels.names)
                raise ReviewError(f"boxes[{i}]: unknown label {b.label!r}; known labels: {known}")
            x0, y0, x1, y1 = b.box
            if x0 < 0 or y0 < 0 or x1 > sub.width or y1 > sub.height:
                raise ReviewError(
                    f"boxes[{i}]: {list(b.box)} lies outside the {sub.width}x{sub.height} photo "
                    "(boxes are in pixels of the upright original photo)"
                )
            if b.width < MIN_BOX_PX or b.height < MIN_BOX_PX:
                raise ReviewError(f"boxes[{i}]: {list(b.box)} is smaller than {MIN_BOX_PX:g} px")
        return [box_json(b) for b in boxes]

    def _append_review(
        self,
        s: Session,
        sub: Submission,
        moderator_id: int,
        verdict: str,
        label: str | None,
        note: str,
        boxes: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        final = self._final_label(sub, verdict, label)
        seen = sub.revision
        status = self._next_status(sub, verdict, moderator_id, final)
        # the registry (below) says which cameras a verified photo shows; any other status shows none
        camera_id = sub.camera_id if status == "verified" else None
        done: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(Submission)
            .where(Submission.id == sub.id, Submission.revision == seen)
            .values(
                revision=seen + 1,
                status=status,
                final_label=final,
                boxes=boxes,
                camera_id=camera_id,
                claimed_by=None,  # a review ends the reviewer's claim
                claimed_until=None,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # someone else's review won between our read and this update
            raise IntegrityError("revision moved", None, ValueError("stale revision"))
        s.add(
            Review(
                submission_id=sub.id,
                revision=seen + 1,
                moderator_id=moderator_id,
                created_at=utcnow(),
                verdict=verdict,
                label=final if verdict != "reject" else label,
                note=note,
                model_label=sub.label,
                model_confidence=sub.confidence,
                model_version=sub.model_version,
                boxes=boxes,
            )
        )
        s.flush()
        if status == "verified":  # the camera registry (#16): which physical cameras the photo shows
            from serve.registry.cameras import attach_verified  # here: that module imports this one

            attach_verified(s, sub.id, self.labels, moderator_id)
        s.expire(sub)
        return submission_json(sub, sub.reviews)

    def review_counts(self) -> dict[str, int]:
        """How many submissions are in each status (for the page and /metrics)."""
        with self.session() as s:
            rows = s.execute(select(Submission.status, func.count()).group_by(Submission.status)).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    def verified(self) -> list[Submission]:
        """Verified submissions (oldest first), detached, for the exports."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Submission)
                    .where(Submission.status == "verified")
                    .order_by(Submission.created_at, Submission.id)
                ).all()
            )

    # -- erasure ----------------------------------------------------------------------------------

    def delete_submission(self, submission_id: str, *, by: str, reason: str) -> dict[str, Any]:
        """Delete a submission, its reviews, its photo and every copy made of it; keep an audit row.

        The audit row (:func:`deletion_json`) holds who, when, why, the id, the photo's sha256 and
        the status it had, never the photo, its location or notes. The photo file and its derivatives
        are removed after the commit unless another submission sent the same bytes (then
        ``photo_removed`` is false and that submission keeps it). Submissions that repeated this
        one now point at the oldest of them. NotFoundError for an unknown id.
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise ValueError(f"give the reason for deleting, 1-{MAX_REASON} characters")
        with self.session(write=True) as s:
            sub = s.get(Submission, submission_id)
            if sub is None:
                raise NotFoundError(f"no submission {submission_id!r}")
            rel = sub.photo
            shared = s.scalar(select(func.count()).where(Submission.photo == rel, Submission.id != sub.id))
            self._repoint_duplicates(s, sub)
            row = Deletion(
                submission_id=sub.id,
                sha256=sub.sha256,
                deleted_at=utcnow(),
                deleted_by=by[:128],
                reason=reason,
                status=sub.status,
                photo_removed=not shared,
            )
            s.add(row)
            s.execute(delete(Review).where(Review.submission_id == sub.id))
            s.expunge(sub)
            s.execute(delete(Submission).where(Submission.id == submission_id))
            s.flush()
            view = deletion_json(row)
        if not shared:  # after the commit: a crash in between leaves an orphan the next start sweeps
            self.photos.remove(rel)
        self._checkpoint()
        log.info("deleted submission %s (by %s)", submission_id, by)
        return view

    @staticmethod
    def _repoint_duplicates(s: Session, sub: Submission) -> None:
        """Make the oldest submission that repeated ``sub`` the one the others repeat."""
        dups = s.scalars(
            select(Submission).where(Submission.duplicate_of == sub.id).order_by(Submission.created_at)
        ).all()
        if not dups:
            return
        root = dups[0]
        root.duplicate_of = sub.duplicate_of
        for other in dups[1:]:
            other.duplicate_of = root.id
        s.flush()

    def _checkpoint(self) -> None:
        """On SQLite, copy the WAL into the database file now, so deleted rows leave it (best effort)."""
        if not self.is_sqlite:
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # noqa: BLE001 - the automatic checkpoint does it later
            log.warning("store: WAL checkpoint after a deletion failed; SQLite does it later", exc_info=True)

    def purge_rejected(self, older_than: timedelta, *, by: str = "retention") -> list[dict[str, Any]]:
        """Delete every submission rejected more than ``older_than`` ago; returns their audit rows."""
        if older_than < timedelta(0):
            raise ValueError("the retention period cannot be negative")
        ids = self.rejected_before(utcnow() - older_than)
        days = older_than / timedelta(days=1)
        reason = f"retention: rejected more than {days:g} days ago"
        done = []
        for sid in ids:
            try:
                done.append(self.delete_submission(sid, by=by, reason=reason))
            except NotFoundError:  # deleted by someone else meanwhile
                continue
        return done

    def rejected_before(self, cutoff: datetime) -> list[str]:
        """Ids of the submissions whose rejection (latest review) is older than ``cutoff``."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Submission.id)
                    .where(Submission.status == "rejected", Submission.updated_at < cutoff)
                    .order_by(Submission.updated_at)
                ).all()
            )

    def deletions(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deletions' audit rows, newest first."""
        with self.session() as s:
            rows = s.scalars(
                select(Deletion).order_by(Deletion.deleted_at.desc(), Deletion.id.desc()).limit(limit)
            )
            return [deletion_json(r) for r in rows]

    # -- moderators -------------------------------------------------------------------------------

    def add_moderator(self, name: str) -> str:
        """Create a moderator, or reissue a revoked one, and return their token (shown once; only its
        hash is stored). ValueError when an active moderator has that name."""
        name = name.strip()
        if not name or len(name) > 64:
            raise ValueError("a moderator name must be 1-64 characters")
        token = new_token()
        try:
            with self.session(write=True) as s:
                mod = s.scalar(select(Moderator).where(Moderator.name == name))
                if mod is not None and mod.revoked_at is None:
                    raise ValueError(
                        f"a moderator named {name!r} exists already; pick another name, or give them "
                        f"a new token with `camid moderators rotate {name}`"
                    )
                if mod is not None:  # revoked: the same person back, their reviews keep the name
                    mod.token_hash, mod.revoked_at = hash_token(token), None
                else:
                    s.add(Moderator(name=name, token_hash=hash_token(token), created_at=utcnow()))
        except IntegrityError:
            raise ValueError(f"a moderator named {name!r} exists already; pick another name") from None
        return token

    def rotate_moderator(self, name: str) -> str:
        """Give a moderator (active or revoked) a new token; the old one stops working at once."""
        token = new_token()
        with self.session(write=True) as s:
            mod = s.scalar(select(Moderator).where(Moderator.name == name))
            if mod is None:
                raise NotFoundError(f"no moderator named {name!r}; see `camid moderators list`")
            mod.token_hash, mod.revoked_at = hash_token(token), None
        return token

    def moderators(self) -> list[ModeratorInfo]:
        """All moderator accounts, revoked ones included, by name."""
        with self.session() as s:
            return [_moderator_info(m) for m in s.scalars(select(Moderator).order_by(Moderator.name))]

    def revoke_moderator(self, name: str) -> ModeratorInfo:
        """Revoke a moderator's token (their reviews stay); NotFoundError for an unknown name."""
        with self.session(write=True) as s:
            mod = s.scalar(select(Moderator).where(Moderator.name == name))
            if mod is None:
                raise NotFoundError(f"no moderator named {name!r}; see `camid moderators list`")
            if mod.revoked_at is None:
                mod.revoked_at = utcnow()
            return _moderator_info(mod)

    def authenticate(self, token: str) -> ModeratorInfo | None:
        """The moderator holding ``token`` (revoked ones too: the caller answers 403), or None."""
        digest = hash_token(token)
        with self.session() as s:
            mod = s.scalar(select(Moderator).where(Moderator.token_hash == digest))
        if mod is None or not hmac.compare_digest(mod.token_hash, digest):
            return None
        return _moderator_info(mod)

    # -- maintenance ------------------------------------------------------------------------------

    def sweep(self, grace_s: float = 0.0) -> int:
        """Remove photo files and temp files that no submission references; returns the count."""
        with self.session() as s:
            referenced = set(s.scalars(select(Submission.photo).distinct()).all())
        return self.photos.sweep(referenced, grace_s)


def deletion_json(d: Deletion) -> dict[str, Any]:
    """A deletion's audit row as the API and CLI show it."""
    return {
        "submission_id": d.submission_id,
        "sha256": d.sha256,
        "deleted_at": _iso(d.deleted_at),
        "deleted_by": d.deleted_by,
        "reason": d.reason,
        "status": d.status,
        "photo_removed": d.photo_removed,
    }


def _moderator_info(m: Moderator) -> ModeratorInfo:
    return ModeratorInfo(id=m.id, name=m.name, created_at=m.created_at, revoked_at=m.revoked_at)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def box_json(b: LabeledBox) -> dict[str, Any]:
    """A box as the store keeps it: ``{"label", "box": [x0, y0, x1, y1]}`` (the manifest's shape)."""
    return {"label": b.label, "box": list(b.box)}


def stored_boxes(items: Sequence[dict[str, Any]] | None) -> list[LabeledBox]:
    """The stored ``boxes`` JSON as :class:`LabeledBox` objects (None: no boxes)."""
    return [LabeledBox(str(i["label"]), tuple_box(i["box"])) for i in items or ()]


def tuple_box(box: Sequence[Any]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


def model_boxes(sub: Submission) -> list[dict[str, Any]]:
    """The model's cameras of a submission as stored boxes, clipped to the photo (older results: none)."""
    out = []
    for camera in sub.result.get("cameras") or ():
        x0, y0, x1, y1 = tuple_box(camera["box"])
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(sub.width), x1), min(float(sub.height), y1)
        if x1 - x0 >= MIN_BOX_PX and y1 - y0 >= MIN_BOX_PX:
            out.append({"label": str(camera["label"]), "box": [x0, y0, x1, y1]})
    return out


def camera_count(sub: Submission) -> int:
    """Cameras in the photo: the verified boxes once a review set them, else the model's cameras."""
    return len(sub.boxes) if sub.boxes is not None else len(sub.result.get("cameras") or ())


def review_json(r: Review) -> dict[str, Any]:
    """A review as the API shows it."""
    return {
        "revision": r.revision,
        "moderator": r.moderator.name,
        "created_at": _iso(r.created_at),
        "verdict": r.verdict,
        "label": r.label,
        "note": r.note,
        "model_label": r.model_label,
        "model_confidence": r.model_confidence,
        "model_version": r.model_version,
        "boxes": r.boxes,
    }


def submission_json(
    sub: Submission, reviews: list[Review] | None, duplicates: list[str] | None = None
) -> dict[str, Any]:
    """A submission as the API shows it; ``reviews``/``duplicates`` only in the detailed view."""
    location = None
    if sub.lat is not None and sub.lon is not None:
        location = {"lat": sub.lat, "lon": sub.lon, "source": sub.location_source}
    view: dict[str, Any] = {
        "id": sub.id,
        "created_at": _iso(sub.created_at),
        "updated_at": _iso(sub.updated_at),
        "status": sub.status,
        "revision": sub.revision,
        "label": sub.final_label or sub.label,
        "final_label": sub.final_label,
        "result": {**sub.result, "location": location},
        "width": sub.width,
        "height": sub.height,
        "camera_count": camera_count(sub),
        "boxes": sub.boxes,
        "source": sub.source,
        "note": sub.note,
        "duplicate_of": sub.duplicate_of,
        "photo_url": f"/v1/submissions/{sub.id}/photo",
        "heatmap_url": f"/v1/submissions/{sub.id}/heatmap.png",
    }
    if sub.claimed_by is not None and sub.claimed_until is not None and sub.claimed_until > utcnow():
        view["claim"] = {"moderator": sub.claimed_by, "until": _iso(sub.claimed_until)}
    if sub.provenance:  # intake (#13): the post's link and time, a mail's date
        view["provenance"] = sub.provenance
    if reviews is not None:
        view["reviews"] = [review_json(r) for r in reviews]
    if duplicates is not None:
        view["duplicates"] = duplicates
    return view
