"""Typed FastAPI dependencies: what a route needs from the app, resolved from ``app.state``.

Every ``…Dep`` alias of the service is defined here, so routes import them from one place.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from data.images import ImageLimits
from serve.auth import bearer_token, check_moderator
from serve.classify import InferencePool
from serve.engine import Engine
from serve.errors import ApiError
from serve.observability import Metrics
from serve.settings import Settings
from serve.store import ModeratorInfo, Store
from serve.uploads import UploadGate, UploadLimits

__all__ = [
    "EngineDep",
    "ImageLimitsDep",
    "MetricsDep",
    "ModeratorDep",
    "PoolDep",
    "SettingsDep",
    "StoreDep",
    "UploadGateDep",
    "UploadLimitsDep",
    "current_moderator",
    "get_engine",
    "get_store",
]


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The loaded model; 503 ``not_ready`` while it is not loaded."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise ApiError(
            503, "not_ready", "the model is not loaded yet; retry shortly", headers={"Retry-After": "5"}
        )
    return engine


def get_pool(request: Request) -> InferencePool:
    """The bounded inference worker pool (created with the model at startup); 503 before that."""
    pool: InferencePool | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise ApiError(
            503, "not_ready", "the server is starting; retry shortly", headers={"Retry-After": "5"}
        )
    return pool


def get_store(request: Request) -> Store:
    """The store the app opened in its lifespan (``app.state.store``); 503 while it is not open."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise ApiError(503, "store_unavailable", "the submissions store is not open; check the server log")
    return store


async def current_moderator(token: Annotated[str, Depends(bearer_token)], store: StoreDep) -> ModeratorInfo:
    """The moderator whose ``Authorization: Bearer`` token the request carries; 401 unknown, 403 revoked."""
    return await run_in_threadpool(check_moderator, store, token)


def get_metrics(request: Request) -> Metrics:
    """This app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_image_limits(request: Request) -> ImageLimits:
    """Byte and pixel limits for one photo, from the settings."""
    settings = get_settings(request)
    return ImageLimits(
        max_bytes=settings.max_bytes,
        max_pixels=settings.max_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
    )


def get_upload_limits(request: Request) -> UploadLimits:
    """Limits on one multipart request, from the settings."""
    s = get_settings(request)
    return UploadLimits(
        max_bytes=s.max_bytes,
        max_files=s.max_files_per_request,
        max_request_bytes=s.max_request_bytes,
        timeout_s=s.upload_timeout_s,
        min_rate=s.upload_min_rate,
        grace_s=s.upload_grace_s,
    )


def get_upload_gate(request: Request) -> UploadGate:
    """The app's bounds on uploads in progress (per client) and on the bytes they hold."""
    gate: UploadGate = request.app.state.uploads
    return gate


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[InferencePool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ImageLimitsDep = Annotated[ImageLimits, Depends(get_image_limits)]
UploadLimitsDep = Annotated[UploadLimits, Depends(get_upload_limits)]
UploadGateDep = Annotated[UploadGate, Depends(get_upload_gate)]
StoreDep = Annotated[Store, Depends(get_store)]
ModeratorDep = Annotated[ModeratorInfo, Depends(current_moderator)]
