"""Shadow mode: a candidate model scores every new submission beside the live one.

With ``CAMID_SHADOW_MODEL=candidate.onnx`` the server classifies each submission that arrives
after it started with the candidate too, a few seconds later and off the request path, and keeps
the candidate's verdict in ``shadow_verdicts``. Decisions, the queue and every answer stay the
live model's. :func:`shadow_report` (``camid model shadow-report``, ``GET /v1/admin/shadow``)
says how often the two agree and lists the submissions where they disagree, with the moderators'
label where there is one, so a researcher sees which model was right before promoting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from data.images import ImageError
from serve.engine import Engine, build_result
from serve.photos import decode_photo
from serve.store import Store, Submission
from serve.store.models import ShadowVerdict, utcnow

__all__ = ["ShadowScorer", "score_new", "shadow_report"]

log = logging.getLogger(__name__)

BATCH = 16


def _unscored(store: Store, engine: Engine, since: datetime, limit: int, skip: set[str]) -> list[str]:
    """Submissions created since ``since`` that the shadow model has not scored (nor failed on)."""
    info = engine.info
    scored = exists().where(
        ShadowVerdict.submission_id == Submission.id,
        ShadowVerdict.model_name == info.name,
        ShadowVerdict.model_version == info.version,
    )
    with store.session() as s:
        rows = s.scalars(
            select(Submission.id)
            .where(Submission.created_at >= since, ~scored)
            .order_by(Submission.created_at, Submission.id)
            .limit(limit + len(skip))
        ).all()
    return [sid for sid in rows if sid not in skip][:limit]


def _score(store: Store, engine: Engine, submission_id: str) -> ShadowVerdict | None:
    with store.session() as s:
        sub = s.get(Submission, submission_id)
        if sub is None:
            return None
        rel, width, height, image = sub.photo, sub.width, sub.height, sub.result.get("image") or {}
    photo = decode_photo(store.photos.path(rel).read_bytes(), min_side=engine.min_side)
    (prediction,) = engine.classify([photo.image], sizes=[(width, height)])
    result = build_result(
        prediction,
        engine.info,
        width=width,
        height=height,
        sha256=str(image.get("sha256", "")),
        phash=str(image.get("phash", "")),
    )
    return ShadowVerdict(
        submission_id=submission_id,
        created_at=utcnow(),
        model_name=engine.info.name,
        model_version=engine.info.version,
        label=prediction.label,
        confidence=prediction.confidence,
        decision=prediction.decision,
        result=result,
    )


def score_new(
    store: Store, engine: Engine, since: datetime, limit: int = BATCH, failed: set[str] | None = None
) -> int:
    """Score up to ``limit`` new submissions with the shadow model; how many it looked at.

    Submissions whose photo cannot be read are added to ``failed`` and not tried again."""
    failed = failed if failed is not None else set()
    todo = _unscored(store, engine, since, limit, failed)
    for sid in todo:
        try:
            row = _score(store, engine, sid)
        except (ImageError, OSError) as exc:  # deleted meanwhile, or unreadable: nothing to compare
            log.warning("shadow: submission %s not scored (%s)", sid, exc)
            failed.add(sid)
            continue
        if row is None:
            continue
        try:
            with store.session(write=True) as s:
                s.add(row)
        except IntegrityError:  # another worker process scored it first, or it was deleted
            continue
    return len(todo)


class ShadowScorer:
    """An asyncio task: every ``interval_s``, score what arrived since the server started."""

    def __init__(self, app: Any, engine: Engine, interval_s: float) -> None:
        self.app, self.engine, self.interval_s = app, engine, interval_s
        self.since = utcnow()
        self.failed: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> ShadowScorer:
        """Start scoring on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="camid-shadow")
        log.info("shadow model %s %s scores new submissions", self.engine.info.name, self.engine.info.version)
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            store = self.app.state.store
            if store is None:
                continue
            try:
                while await asyncio.to_thread(score_new, store, self.engine, self.since, BATCH, self.failed):
                    pass
            except Exception:  # the shadow never takes the server down
                log.exception("shadow scoring failed; trying again in %.1f s", self.interval_s)

    async def stop(self) -> None:
        """Cancel the scoring task and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _row(sub: Submission, shadow: ShadowVerdict) -> dict[str, Any]:
    return {
        "id": sub.id,
        "created_at": sub.created_at.isoformat().replace("+00:00", "Z"),
        "live": {"version": sub.model_version, "label": sub.label, "decision": sub.decision},
        "shadow": {"version": shadow.model_version, "label": shadow.label, "decision": shadow.decision},
        "moderators": sub.final_label if sub.status == "verified" else None,
        "status": sub.status,
    }


def shadow_report(store: Store, limit: int = 100) -> dict[str, Any]:
    """Agreement of each shadow model with the live verdicts, and the latest disagreements."""
    with store.session() as s:
        pairs = s.execute(
            select(Submission, ShadowVerdict)
            .join(ShadowVerdict, ShadowVerdict.submission_id == Submission.id)
            .order_by(ShadowVerdict.created_at.desc(), ShadowVerdict.id.desc())
        ).all()
        rows = [_row(sub, shadow) for sub, shadow in pairs]
    models: dict[str, dict[str, int]] = {}
    for r in rows:
        m = models.setdefault(
            r["shadow"]["version"],
            {
                "scored": 0,
                "same_label": 0,
                "same_decision": 0,
                "verified": 0,
                "live_right": 0,
                "shadow_right": 0,
            },
        )
        m["scored"] += 1
        m["same_label"] += r["live"]["label"] == r["shadow"]["label"]
        m["same_decision"] += r["live"]["decision"] == r["shadow"]["decision"]
        if r["moderators"] is not None:
            m["verified"] += 1
            m["live_right"] += r["live"]["label"] == r["moderators"]
            m["shadow_right"] += r["shadow"]["label"] == r["moderators"]
    disagree = [
        r
        for r in rows
        if (r["live"]["label"], r["live"]["decision"]) != (r["shadow"]["label"], r["shadow"]["decision"])
    ]
    return {"models": models, "disagreements": disagree[:limit], "disagreement_count": len(disagree)}
