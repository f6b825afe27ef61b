"""Typed FastAPI dependencies: what a route needs from the app, resolved from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from data.images import ImageLimits
from serve.classify import InferencePool
from serve.engine import Engine
from serve.errors import ApiError
from serve.observability import Metrics
from serve.settings import Settings
from serve.uploads import UploadLimits

__all__ = [
    "EngineDep",
    "ImageLimitsDep",
    "MetricsDep",
    "PoolDep",
    "SettingsDep",
    "UploadLimitsDep",
    "get_engine",
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


def get_metrics(request: Request) -> Metrics:
    """This app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_image_limits(request: Request) -> ImageLimits:
    """Byte and pixel limits for one photo, from the settings."""
    settings = get_settings(request)
    return ImageLimits(max_bytes=settings.max_bytes, max_pixels=settings.max_pixels)


def get_upload_limits(request: Request) -> UploadLimits:
    """Limits on one multipart request, from the settings."""
    s = get_settings(request)
    return UploadLimits(
        max_bytes=s.max_bytes,
        max_files=s.max_files_per_request,
        max_request_bytes=s.max_request_bytes,
        timeout_s=s.upload_timeout_s,
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[InferencePool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ImageLimitsDep = Annotated[ImageLimits, Depends(get_image_limits)]
UploadLimitsDep = Annotated[UploadLimits, Depends(get_upload_limits)]
