"""Operational endpoints: ``/v1/model``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serve.deps import EngineDep, MetricsDep
from serve.schemas import Health, ModelDescription, ModelRef, Readiness, error_responses

router = APIRouter(tags=["system"])
log = logging.getLogger(__name__)


@router.get("/v1/model", response_model=ModelDescription, responses=error_responses(503))
def model_info(engine: EngineDep) -> ModelDescription:
    """The loaded model's contract: classes and targets, thresholds, temperature, version, metrics."""
    return ModelDescription.from_contract(engine.info)


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


async def _store_reachable(request: Request) -> bool:
    store = getattr(request.app.state, "store", None)
    if store is None:
        return True
    try:
        return bool(await asyncio.to_thread(store.ping))
    except Exception as exc:  # readiness reports, it does not raise
        log.warning("store ping failed: %s", type(exc).__name__)
        return False


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request, response: Response) -> Readiness:
    """Readiness: 200 only when the model is loaded and the store (if any) answers."""
    checks = {
        "model": getattr(request.app.state, "engine", None) is not None,
        "store": await _store_reachable(request),
    }
    ready = all(checks.values())
    response.status_code = 200 if ready else 503
    engine = getattr(request.app.state, "engine", None)
    model = ModelRef(name=engine.info.name, version=engine.info.version) if engine is not None else None
    return Readiness(status="ready" if ready else "not_ready", checks=checks, model=model)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, metrics: MetricsDep) -> Response:
    """Prometheus metrics of this process (requests, latency, decisions, errors, queue)."""
    pool = getattr(request.app.state, "pool", None)
    metrics.queue.set(pool.pending if pool is not None else 0)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
