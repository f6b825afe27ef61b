"""Re-scoring: the live model classifies the pending submissions again; earlier verdicts are kept.

Each pending submission that another model scored is decoded from its stored photo, classified,
and updated in one transaction that first copies its old verdict into ``verdicts`` (the audit
trail). The queue is ordered by the verdict (``decision``, then ``confidence``), so it re-sorts
itself. A submission reviewed meanwhile is left alone (its revision moved on), and one already
scored by this model is skipped, so an interrupted run can simply be started again. Several
worker threads share one onnxruntime session (which runs them in parallel).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select

from data.images import ImageError
from serve.engine import Engine, build_result
from serve.photos import decode_photo
from serve.store import NotFoundError, Store, Submission
from serve.store.models import Verdict, utcnow

__all__ = ["Outcome", "RescoreJob", "pending_to_rescore", "rescore", "rescore_one", "verdict_history"]

log = logging.getLogger(__name__)

Outcome = Literal["changed", "same", "skipped", "failed"]


def pending_to_rescore(store: Store, engine: Engine) -> list[str]:
    """Ids of pending submissions whose verdict another model (name or version) gave, oldest first."""
    info = engine.info
    with store.session() as s:
        rows = s.execute(
            select(Submission.id, Submission.model_name, Submission.model_version)
            .where(Submission.status == "pending")
            .order_by(Submission.created_at, Submission.id)
        ).all()
    return [r.id for r in rows if (r.model_name, r.model_version) != (info.name, info.version)]


def _new_result(store: Store, engine: Engine, sub: Submission) -> dict[str, Any]:
    """The engine's result for a stored photo, keeping the submission's image facts and location."""
    data = store.photos.path(sub.photo).read_bytes()
    photo = decode_photo(data, min_side=engine.min_side)
    (prediction,) = engine.classify([photo.image], sizes=[(sub.width, sub.height)])
    old = sub.result
    image = old.get("image") or {}
    result = build_result(
        prediction,
        engine.info,
        width=sub.width,
        height=sub.height,
        sha256=str(image.get("sha256") or sub.sha256),
        phash=str(image.get("phash") or sub.phash),
        location=old.get("location"),
    )
    return {**{k: v for k, v in old.items() if k not in result}, **result}


def _replace(store: Store, sub: Submission, result: dict[str, Any]) -> bool:
    """Keep the old verdict in the history and store ``result``; False when the row moved on."""
    with store.session(write=True) as s:
        row = s.get(Submission, sub.id)
        if row is None or row.status != "pending" or row.revision != sub.revision:
            return False
        if (row.model_name, row.model_version) != (sub.model_name, sub.model_version):
            return False  # another run re-scored it meanwhile
        s.add(
            Verdict(
                submission_id=row.id,
                replaced_at=utcnow(),
                model_name=row.model_name,
                model_version=row.model_version,
                label=row.label,
                confidence=row.confidence,
                decision=row.decision,
                result=row.result,
            )
        )
        model = result["model"]
        row.model_name, row.model_version = str(model["name"]), str(model["version"])
        row.label, row.confidence = str(result["label"]), float(result["confidence"])
        row.decision, row.probabilities = str(result["decision"]), list(result["probabilities"])
        row.result = result
    return True


def rescore_one(store: Store, engine: Engine, submission_id: str) -> Outcome:
    """Re-score one pending submission with ``engine``; what happened to it."""
    with store.session() as s:
        sub = s.get(Submission, submission_id)
        if sub is not None:
            s.expunge(sub)
    if sub is None or sub.status != "pending":
        return "skipped"
    if (sub.model_name, sub.model_version) == (engine.info.name, engine.info.version):
        return "skipped"
    try:
        result = _new_result(store, engine, sub)
    except (ImageError, OSError) as exc:
        log.warning("rescore: submission %s left as it was: its photo is unusable (%s)", sub.id, exc)
        return "failed"
    if not _replace(store, sub, result):
        return "skipped"
    changed = (result["label"], result["decision"]) != (sub.label, sub.decision)
    return "changed" if changed else "same"


@dataclass
class RescoreJob:
    """Progress of one re-scoring run (shared with the thread that runs it)."""

    total: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("changed", "same", "skipped", "failed"), 0)
    )
    model: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> int:
        """Submissions handled so far, whatever the outcome."""
        return sum(self.counts.values())

    def count(self, outcome: Outcome) -> None:
        """Record one handled submission (called from the worker threads)."""
        with self._lock:
            self.counts[outcome] += 1

    def to_json(self) -> dict[str, Any]:
        """The progress as ``GET /v1/admin/rescore`` shows it."""
        return {
            "total": self.total,
            "done": self.done,
            **self.counts,
            "model": self.model,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "running": self.finished_at is None,
            "error": self.error,
        }


def _iso_now() -> str:
    return utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


def rescore(
    store: Store,
    engine: Engine,
    *,
    workers: int = 2,
    job: RescoreJob | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> RescoreJob:
    """Re-score every pending submission another model scored, ``workers`` at a time."""
    job = job or RescoreJob()
    job.model = {"name": engine.info.name, "version": engine.info.version}
    job.started_at = job.started_at or _iso_now()
    ids = pending_to_rescore(store, engine)
    job.total = len(ids)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rescore") as pool:
            futures = [pool.submit(rescore_one, store, engine, sid) for sid in ids]
            for future in as_completed(futures):
                outcome = future.result()
                job.count(outcome)
                if progress is not None:
                    progress(outcome)
    except Exception as exc:
        job.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        job.finished_at = _iso_now()
    return job


def verdict_history(store: Store, submission_id: str) -> dict[str, Any]:
    """A submission's current model verdict and the earlier ones re-scoring replaced, oldest first."""
    with store.session() as s:
        sub = s.get(Submission, submission_id)
        if sub is None:
            raise NotFoundError(f"no submission {submission_id!r}")
        rows = s.scalars(
            select(Verdict).where(Verdict.submission_id == submission_id).order_by(Verdict.id)
        ).all()
        current = _verdict_json(sub.model_name, sub.model_version, sub.label, sub.confidence, sub.decision)
        earlier = [
            {
                **_verdict_json(v.model_name, v.model_version, v.label, v.confidence, v.decision),
                "replaced_at": v.replaced_at.isoformat().replace("+00:00", "Z"),
            }
            for v in rows
        ]
    return {"id": submission_id, "current": current, "earlier": earlier}


def _verdict_json(name: str, version: str, label: str, confidence: float, decision: str) -> dict[str, Any]:
    return {
        "model": {"name": name, "version": version},
        "label": label,
        "confidence": confidence,
        "decision": decision,
    }
