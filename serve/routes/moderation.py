"""The moderators' page, heatmaps on demand, and the exports (training manifest, camera map)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from data.images import load_image
from data.preprocess import decode_hint
from serve import exports
from serve.auth import ModeratorDep, StoreDep
from serve.deps import EngineDep, PoolDep
from serve.engine import Engine
from serve.errors import ApiError
from serve.privacy import PrivacyError
from serve.schemas import CameraMap, Moderator, body_response, error_responses, inline_schema
from serve.store import NotFoundError, Store

router = APIRouter(tags=["moderation"])

HERE = Path(__file__).resolve().parents[1]
STATIC = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
NO_STORE = {"Cache-Control": "no-store"}
MODERATOR_ERRORS = error_responses(401, 403, 503)  # token missing/unknown, revoked, store not open


@functools.cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(HERE / "templates"))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def moderation_page(request: Request) -> Response:
    """The moderators' page. It holds no data: every request it makes carries the moderator's token."""
    store: Store | None = getattr(request.app.state, "store", None)
    labels = store.labels if store is not None else None
    classes = [
        {"name": c.name, "display": c.display_name, "target": c.target}
        for c in (labels.classes if labels else ())
    ]
    return _templates().TemplateResponse(
        request,
        "moderation.html",
        {"classes": classes},
        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:", **NO_STORE},
    )


@router.get("/moderation/static/{name}", include_in_schema=False)
async def moderation_static(name: str) -> Response:
    """The page's own script and style sheet (no CDN)."""
    path = STATIC / name
    media = STATIC_TYPES.get(path.suffix)
    if media is None or "/" in name or name.startswith(".") or not path.is_file():
        raise ApiError(404, "not_found", f"no static file {name!r}")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get(
    "/v1/moderators/me", response_model=None, responses={200: {"model": Moderator}, **MODERATOR_ERRORS}
)
async def whoami(moderator: ModeratorDep) -> dict[str, Any]:
    """The moderator the token belongs to (the page checks a token with this)."""
    return {"name": moderator.name, "created_at": moderator.created_at.isoformat()}


def _heatmap_png(engine: Engine, store: Store, submission_id: str) -> bytes:
    img = load_image(store.photo_path(submission_id), min_side=decode_hint(engine.info.resize))
    (prediction,) = engine.classify([img], heatmap=True)
    if prediction.heatmap_png is None:
        raise ApiError(404, "no_heatmap", "this model does not output a class-activation map")
    return prediction.heatmap_png


@router.get(
    "/v1/submissions/{submission_id}/heatmap.png",
    response_class=Response,
    responses={
        200: body_response("image/png", "the heatmap over the model's input"),
        **MODERATOR_ERRORS,
        **error_responses(404, 422),
    },
)
async def heatmap(
    submission_id: str, engine: EngineDep, pool: PoolDep, store: StoreDep, moderator: ModeratorDep
) -> Response:
    """Where the loaded model looks in the stored photo, as a PNG overlay (computed on demand)."""
    try:
        png = await pool.run(_heatmap_png, engine, store, submission_id)
    except (NotFoundError, FileNotFoundError) as exc:
        raise ApiError(404, "not_found", f"no photo for submission {submission_id!r}") from exc
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


def _privacy_failure(exc: PrivacyError) -> ApiError:
    return ApiError(503, "privacy_unavailable", f"photos cannot be exported unblurred: {exc}")


@router.get(
    "/v1/export/training.csv",
    response_class=Response,
    responses={200: body_response("text/csv", "the training manifest"), **MODERATOR_ERRORS},
)
async def export_training_csv(store: StoreDep, moderator: ModeratorDep) -> Response:
    """Verified submissions as a training manifest; paths resolve inside ``training.zip``."""
    subs = await run_in_threadpool(store.verified)
    text = exports.training_csv(exports.training_records(subs))
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={**NO_STORE, **_attachment("training.csv")}
    )


def _zip_to_tempfile(store: Store) -> str:
    with tempfile.NamedTemporaryFile(prefix="camid-export-", suffix=".zip", delete=False) as fh:
        exports.write_training_zip(store, fh)
        return fh.name


@router.get(
    "/v1/export/training.zip",
    response_class=FileResponse,
    responses={
        200: body_response("application/zip", "manifest.csv and photos/ (blurred)"),
        **MODERATOR_ERRORS,
    },
)
async def export_training_zip(store: StoreDep, moderator: ModeratorDep) -> Response:
    """``manifest.csv`` + ``photos/`` (faces and plates blurred), ready for ``camid train --data``."""
    try:
        path = await run_in_threadpool(_zip_to_tempfile, store)
    except PrivacyError as exc:
        raise _privacy_failure(exc) from exc
    cleanup = BackgroundTask(Path(path).unlink, missing_ok=True)
    return FileResponse(path, media_type="application/zip", filename="camid-training.zip", background=cleanup)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get(
    "/v1/export/cameras.geojson",
    response_class=Response,
    responses={
        200: body_response("application/geo+json", "the camera map", inline_schema(CameraMap)),
        **error_responses(503),
    },
)
async def export_cameras_geojson(store: StoreDep) -> Response:
    """Public: verified target cameras as GeoJSON points (model, first/last seen, photo count)."""
    cameras = exports.cluster_cameras(await run_in_threadpool(store.verified), store.labels)
    return JSONResponse(
        exports.cameras_geojson(cameras, store.labels),
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get(
    "/v1/export/cameras.csv",
    response_class=Response,
    responses={200: body_response("text/csv", "the cameras, one row each"), **error_responses(503)},
)
async def export_cameras_csv(store: StoreDep) -> Response:
    """Public: the same cameras in the initiative's spreadsheet columns (docs/moderation.md)."""
    cameras = exports.cluster_cameras(await run_in_threadpool(store.verified), store.labels)
    return Response(
        exports.cameras_csv(cameras, store.labels),
        media_type="text/csv; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", **_attachment("cameras.csv")},
    )
