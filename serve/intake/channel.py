"""What a channel (inbox, posts importer) shares: the loaded model, the store, the rules, the
sender key, and the outcome of one photo as a line a person reads."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from serve.engine import Engine
from serve.errors import ApiError
from serve.intake.intake import AlreadyStored, IntakeItem, IntakeRules, take_in
from serve.store import Store

__all__ = ["Channel", "ItemOutcome", "Outcome", "sha256_hex", "store_item"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Channel:
    """Everything an intake channel needs to store photos."""

    engine: Engine
    store: Store
    rules: IntakeRules
    sender_key: bytes


@dataclass(frozen=True)
class ItemOutcome:
    """One photo's fate: ``stored`` (maybe as a duplicate), ``already`` stored, ``refused``, or
    ``retry`` (rate limit or a server failure: try again later)."""

    kind: str
    detail: str
    submission_id: str | None = None
    duplicate_of: str | None = None


@dataclass
class Outcome:
    """The outcome of one mail or post: its photos' outcomes and the problems of the item itself."""

    label: str  # "mail uid 7", "post https://x.com/…"
    items: list[ItemOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def retry(self) -> bool:
        """True when some photo should be tried again (so the item must not be marked processed)."""
        return any(i.kind == "retry" for i in self.items)

    def lines(self) -> list[str]:
        """One line per photo and per problem, for the command's report."""
        out = [f"{self.label}: {p}" for p in self.problems]
        out += [f"{self.label}: photo {n}: {i.detail}" for n, i in enumerate(self.items)]
        return out

    def summary(self) -> dict[str, Any]:
        """Counts by outcome kind."""
        counts: dict[str, Any] = {"problems": len(self.problems)}
        for i in self.items:
            counts[i.kind] = counts.get(i.kind, 0) + 1
        return counts


def sha256_hex(data: bytes) -> str:
    """sha256 of bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def store_item(channel: Channel, item: IntakeItem) -> ItemOutcome:
    """Run one photo through the intake; every failure becomes an outcome, never an exception."""
    try:
        stored = take_in(channel.engine, channel.store, item, channel.rules)
    except AlreadyStored as exc:
        return ItemOutcome("already", f"stored before as submission {exc.submission_id}", exc.submission_id)
    except ApiError as exc:
        kind = "retry" if exc.status in (429, 503) else "refused"
        return ItemOutcome(kind, f"{exc.code}: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - the database or model failed: report, retry later
        log.exception("intake: storing a photo failed")
        return ItemOutcome("retry", f"server error ({type(exc).__name__}); it will be tried again")
    view = stored.view
    dup = view.get("duplicate_of")
    detail = f"stored as submission {view['id']}" + (f", a duplicate of {dup}" if dup else "")
    return ItemOutcome("stored", detail, str(view["id"]), dup)
