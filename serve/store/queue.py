"""The moderation queue's order, its keyset cursors, and the review policy (four eyes, claims).

Pages are cut by a cursor holding the sort key of the last item seen, not by an offset: the
pending set shrinks while moderators review it, and an offset would silently skip the items
that moved up. A cursor resumes exactly after the last item shown, however many items before
it left the set meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, false, or_

from serve.store.models import Submission

Order = Literal["uncertainty", "time", "-time"]


class CursorError(ValueError):
    """A cursor that this server did not hand out for this order."""


@dataclass(frozen=True)
class ReviewPolicy:
    """How reviews publish: ``four_eyes`` needs a second moderator's agreement before a camera goes
    public (the first approval leaves status ``awaiting_second``); ``claim_s`` is the lease a
    moderator gets on the item they open, so two moderators don't work on the same photo."""

    four_eyes: bool = False
    claim_s: float = 600.0


def _review_first() -> ColumnElement[int]:
    return case((Submission.decision == "review", 0), else_=1)


def ordering(order: Order) -> list[Any]:
    """ORDER BY of the queue: by uncertainty (decision 'review' first, then lowest confidence) or time."""
    if order == "time":
        return [Submission.created_at, Submission.id]
    if order == "-time":
        return [Submission.created_at.desc(), Submission.id.desc()]
    return [_review_first(), Submission.confidence, Submission.created_at, Submission.id]


def _key_columns(order: Order) -> list[Any]:
    if order == "uncertainty":
        return [_review_first(), Submission.confidence, Submission.created_at, Submission.id]
    return [Submission.created_at, Submission.id]


def sort_key(sub: Submission, order: Order) -> list[Any]:
    """The values of ``sub`` that :func:`ordering` sorts on, in that order."""
    if order == "uncertainty":
        return [0 if sub.decision == "review" else 1, sub.confidence, sub.created_at, sub.id]
    return [sub.created_at, sub.id]


def encode_cursor(sub: Submission, order: Order) -> str:
    """An opaque cursor that resumes the queue right after ``sub``."""
    key = [v.isoformat() if isinstance(v, datetime) else v for v in sort_key(sub, order)]
    raw = json.dumps([order, *key], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, order: Order) -> list[Any]:
    """The sort key inside ``cursor``; :class:`CursorError` when it is not one of ours for ``order``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not one this server handed out; start again without it") from exc
    if not isinstance(values, list) or not values or values[0] != order:
        raise CursorError(f"cursor was made for another order than {order!r}; start again without it")
    key = values[1:]
    try:
        if order == "uncertainty":
            review_first, confidence, created, sub_id = key
            return [int(review_first), float(confidence), datetime.fromisoformat(created), str(sub_id)]
        created, sub_id = key
        return [datetime.fromisoformat(created), str(sub_id)]
    except (TypeError, ValueError) as exc:
        raise CursorError("cursor is damaged; start again without it") from exc


def after(cursor: str, order: Order) -> ColumnElement[bool]:
    """WHERE clause: the rows that :func:`ordering` puts after the cursor's row (keyset pagination)."""
    key, columns = decode_cursor(cursor, order), _key_columns(order)
    descending = order == "-time"
    clause: ColumnElement[bool] = false()
    for i in reversed(range(len(columns))):
        beyond = columns[i] < key[i] if descending else columns[i] > key[i]
        ties = [columns[j] == key[j] for j in range(i)]
        clause = or_(and_(*ties, beyond) if ties else beyond, clause)
    return clause
