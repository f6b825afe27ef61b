"""The camid HTTP service: ``create_app(settings)`` builds it, ``camid serve`` runs it with uvicorn.

The model is loaded in the lifespan (``app.state.engine``) and inference runs in a bounded worker
pool (``app.state.pool``); nothing is built at import time, so tests create as many apps as they
like. ``app_from_env`` is the uvicorn factory used by ``camid serve`` so several worker processes
each build their own app from the ``CAMID_*`` environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serve.classify import InferencePool
from serve.engine import Engine
from serve.errors import install_error_handlers
from serve.intake.service import add_imap_intake
from serve.lifecycle.reload import live_model_path
from serve.lifecycle.tasks import start_background
from serve.observability import BodyLimitMiddleware, Metrics, RequestLogMiddleware
from serve.routes import cameras as camera_routes
from serve.routes import classify, deletions, docs, exports, moderators, page, submissions, system, vendor
from serve.routes import map as map_routes
from serve.routes import submit as submit_routes
from serve.routes.admin import router as admin_router
from serve.settings import Settings
from serve.store import ReviewPolicy, describe_store, open_store, write_server_marker
from serve.uploads import UploadGate

__all__ = ["app_from_env", "create_app", "main"]

log = logging.getLogger(__name__)


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model_path = await asyncio.to_thread(live_model_path, settings)
        if not model_path.is_file():
            raise RuntimeError(
                f"model not found at {model_path}; export one with `camid export` "
                "or point CAMID_MODEL_PATH (or `camid serve --model`) at an .onnx file"
            )
        engine = await asyncio.to_thread(Engine.load, model_path, threads=settings.ort_threads)
        log.info("model %s %s loaded from %s", engine.info.name, engine.info.version, model_path)
        policy = ReviewPolicy(four_eyes=settings.four_eyes, claim_s=60.0 * settings.claim_minutes)
        store = await asyncio.to_thread(open_store, settings, engine.info.labels, policy)
        await asyncio.to_thread(write_server_marker, store)  # `camid moderators` checks it
        pool = InferencePool(
            threads=settings.inference_threads,
            queue_size=settings.queue_size,
            timeout_s=settings.request_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        app.state.engine, app.state.store, app.state.pool = engine, store, pool
        background = await start_background(app, settings)  # hot reload, shadow model
        try:
            yield
        finally:
            await background.stop()
            pool.close()
            store.close()
            if app.state.store is store:  # not replaced by a second, overlapping lifespan
                app.state.engine = app.state.store = None

    return lifespan


def _version() -> str:
    try:
        return version("camid")
    except PackageNotFoundError:
        return "dev"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app: routes, error handlers, middlewares, metrics; the model loads at startup."""
    settings = settings or Settings()
    app = FastAPI(
        title="camid",
        version=_version(),
        summary="Identify Huawei 'Safe City' surveillance cameras in citizens' photos",
        lifespan=_lifespan(settings),
        docs_url=None,  # served from local files by serve.routes.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.store = None
    app.state.metrics = Metrics()
    app.state.pool = None
    app.state.uploads = UploadGate(
        per_client=settings.uploads_per_client,
        max_buffered_bytes=max(settings.upload_buffer_bytes, settings.max_request_bytes),
        retry_after_s=settings.retry_after_s,
    )
    install_error_handlers(app)
    for routes in (system, classify, submissions, deletions, exports, moderators, page, docs, vendor):
        app.include_router(routes.router)
    app.include_router(admin_router)
    app.include_router(submit_routes.router)  # the public submit page (#13)
    add_imap_intake(app)  # camid serve --intake-imap: the server polls the inbox too (#13)
    app.include_router(camera_routes.router)  # the camera registry and the public map (#16)
    app.include_router(map_routes.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)
    if settings.forwarded_allow_ips:  # outermost: everything inside sees the real client address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: an app configured from the ``CAMID_*`` environment (one per worker)."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return create_app(settings)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="camid serve", description="Run the camid HTTP service.")
    parser.add_argument("--host", help="interface to bind (CAMID_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (CAMID_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (CAMID_WORKERS, default 1)")
    parser.add_argument("--model", help="ONNX model (CAMID_MODEL_PATH, default: the release model)")
    parser.add_argument("--data-dir", help="photos and the SQLite database (CAMID_DATA_DIR, default ./var)")
    parser.add_argument(
        "--forwarded-allow-ips",
        "--trusted-proxy",
        dest="forwarded_allow_ips",
        metavar="IPS",
        help="reverse proxies whose X-Forwarded-For gives the client address (rate limits, logs): "
        "comma-separated IPs or CIDRs, '*' for any (CAMID_FORWARDED_ALLOW_IPS; default: none)",
    )
    parser.add_argument(
        "--intake-imap",
        action="store_true",
        help="also store the photos mailed to the inbox that CAMID_INTAKE_IMAP_* name (docs/intake.md)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``camid serve``: run uvicorn with the app factory; options override ``CAMID_*`` variables."""
    import uvicorn

    args = _parse(argv)
    # Workers are separate processes that rebuild Settings from the environment: pass options there.
    for name, value in (
        ("HOST", args.host),
        ("PORT", args.port),
        ("WORKERS", args.workers),
        ("MODEL_PATH", args.model),
        ("DATA_DIR", args.data_dir),
        ("FORWARDED_ALLOW_IPS", args.forwarded_allow_ips),
        ("INTAKE_IMAP_ENABLED", "1" if args.intake_imap else None),
    ):
        if value is not None:
            os.environ[f"CAMID_{name}"] = str(value)
    settings = Settings()
    if not live_model_path(settings).is_file():
        sys.stderr.write(f"camid serve: no model at {settings.model_path}; pass --model PATH or export one\n")
        return 2
    sys.stderr.write(f"camid serve: {describe_store(settings)}\n")
    if settings.forwarded_allow_ips:
        sys.stderr.write(
            f"camid serve: client addresses from X-Forwarded-For of {settings.forwarded_allow_ips}\n"
        )
    uvicorn.run(
        "serve.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        proxy_headers=False,  # the app applies X-Forwarded-* itself, from trusted proxies only
        access_log=False,  # camid.access logs one structured line per request instead
    )
    return 0
