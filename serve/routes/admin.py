"""Model lifecycle endpoints for moderators: hot reload, background re-scoring, verdict history.

- ``POST /v1/admin/model/reload``: serve the registry's live model now (the server also notices a
  promotion by itself within ``CAMID_MODEL_WATCH_S`` seconds).
- ``POST /v1/admin/rescore`` starts re-scoring the pending submissions with the served model in the
  background; ``GET /v1/admin/rescore`` shows its progress.
- ``GET /v1/submissions/{id}/verdicts``: the model verdict a submission has and those it had.
- ``GET /v1/admin/shadow``: where the shadow model (``CAMID_SHADOW_MODEL``) and the live one disagree.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from serve.deps import EngineDep, ModeratorDep, SettingsDep, StoreDep
from serve.engine import ModelError
from serve.errors import ApiError
from serve.lifecycle.registry import RegistryError
from serve.lifecycle.reload import reload_model
from serve.lifecycle.rescore import RescoreJob, rescore, verdict_history
from serve.lifecycle.shadow import shadow_report
from serve.schemas import ModelRef, error_responses
from serve.store import NotFoundError

router = APIRouter(tags=["models"])
log = logging.getLogger(__name__)

ERRORS = error_responses(401, 403, 503)


class ReloadView(BaseModel):
    """The model served after the reload."""

    changed: bool = Field(description="false when the live model was already being served")
    model: dict[str, str] = Field(description="name, version and file of the served model")
    previous_version: str | None


class RescoreView(BaseModel):
    """Progress of the latest re-scoring run."""

    total: int = Field(description="pending submissions another model had scored when it started")
    done: int
    changed: int = Field(description="verdicts whose label or decision changed")
    same: int
    skipped: int = Field(description="reviewed or re-scored meanwhile")
    failed: int = Field(description="photos that could not be read (left as they were)")
    model: dict[str, str]
    started_at: str
    finished_at: str | None
    running: bool
    error: str | None


class VerdictView(BaseModel):
    model: ModelRef
    label: str
    confidence: float
    decision: str
    replaced_at: str | None = None


class VerdictHistory(BaseModel):
    """The model verdict a submission has now and the earlier ones (oldest first)."""

    id: str
    current: VerdictView
    earlier: list[VerdictView]


@router.post(
    "/v1/admin/model/reload", response_model=ReloadView, responses=error_responses(401, 403, 422, 503)
)
async def reload(request: Request, _: ModeratorDep) -> dict[str, Any]:
    """Serve the registry's live model now; requests in flight finish on the previous one."""
    try:
        done = await reload_model(request.app)
    except (ModelError, RegistryError) as exc:
        raise ApiError(422, "model_unusable", f"{exc}; still serving the previous model") from exc
    return done.to_json()


def _job(request: Request) -> RescoreJob | None:
    job: RescoreJob | None = getattr(request.app.state, "rescore_job", None)
    return job


def _run_job(job: RescoreJob, store: Any, engine: Any, workers: int) -> None:
    try:
        rescore(store, engine, workers=workers, job=job)
    except Exception:  # the job's error field says what happened; the server keeps running
        log.exception("rescore failed")


@router.post(
    "/v1/admin/rescore",
    response_model=RescoreView,
    status_code=202,
    responses=error_responses(401, 403, 409, 503),
)
def start_rescore(
    request: Request, _: ModeratorDep, store: StoreDep, engine: EngineDep, settings: SettingsDep
) -> dict[str, Any]:
    """Re-score the pending submissions with the served model, in the background (202 at once)."""
    job = _job(request)
    if job is not None and job.finished_at is None:
        raise ApiError(409, "rescore_running", f"a re-scoring run is at {job.done}/{job.total}; wait for it")
    job = RescoreJob(model={"name": engine.info.name, "version": engine.info.version})
    request.app.state.rescore_job = job
    workers = settings.inference_threads
    threading.Thread(target=_run_job, args=(job, store, engine, workers), name="rescore", daemon=True).start()
    return job.to_json()


@router.get("/v1/admin/rescore", response_model=RescoreView, responses=error_responses(401, 403, 404, 503))
def rescore_progress(request: Request, _: ModeratorDep) -> dict[str, Any]:
    """Progress of the latest re-scoring run of this server process."""
    job = _job(request)
    if job is None:
        raise ApiError(404, "not_found", "no re-scoring run since the server started")
    return job.to_json()


@router.get(
    "/v1/submissions/{submission_id}/verdicts",
    response_model=VerdictHistory,
    responses={**ERRORS, **error_responses(404)},
)
async def verdicts(submission_id: str, _: ModeratorDep, store: StoreDep) -> dict[str, Any]:
    """Which model gave the submission's verdict, and the verdicts earlier models gave it."""
    try:
        return await run_in_threadpool(verdict_history, store, submission_id)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


class ShadowStats(BaseModel):
    """One shadow model version's agreement with the live verdicts and with the moderators."""

    scored: int
    same_label: int
    same_decision: int
    verified: int = Field(description="scored submissions the moderators verified since")
    live_right: int = Field(description="of those, how many the live model labelled as the moderators did")
    shadow_right: int = Field(description="and how many the shadow model did")


class ShadowSide(BaseModel):
    version: str
    label: str
    decision: str


class ShadowDisagreement(BaseModel):
    id: str
    created_at: str
    live: ShadowSide
    shadow: ShadowSide
    moderators: str | None = Field(description="the verified label; null while not verified")
    status: str


class ShadowReport(BaseModel):
    """Where the shadow model and the live one disagree (newest first)."""

    models: dict[str, ShadowStats] = Field(description="per shadow model version")
    disagreements: list[ShadowDisagreement]
    disagreement_count: int


@router.get("/v1/admin/shadow", response_model=ShadowReport, responses=ERRORS)
async def shadow(_: ModeratorDep, store: StoreDep, limit: int = 100) -> dict[str, Any]:
    """Per shadow model: how often it agrees with the live verdicts and with the moderators; the
    latest submissions where the two models disagree (newest first)."""
    return await run_in_threadpool(shadow_report, store, max(1, min(limit, 1000)))
