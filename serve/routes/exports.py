"""Exports: the training manifest (moderators) and the public camera map (GeoJSON, CSV)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from serve import exports
from serve.deps import ModeratorDep, SettingsDep, StoreDep
from serve.errors import ApiError
from serve.privacy import PrivacyError
from serve.registry import public as registry_public
from serve.registry.schemas import PublicCameraMap
from serve.routes.map import public as public_cameras
from serve.schemas import body_response, error_responses
from serve.store import Store

router = APIRouter(tags=["exports"])

NO_STORE = {"Cache-Control": "no-store"}
PUBLIC = {"Cache-Control": "public, max-age=300"}
MODERATOR_ERRORS = error_responses(401, 403, 503)  # token missing/unknown, revoked, store not open


class GeoJSONResponse(JSONResponse):
    media_type = "application/geo+json"


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _privacy_failure(exc: PrivacyError) -> ApiError:
    return ApiError(503, "privacy_unavailable", f"photos cannot be exported unblurred: {exc}")


@router.get(
    "/v1/export/training.csv",
    response_class=Response,
    responses={200: body_response("text/csv", "the training manifest"), **MODERATOR_ERRORS},
)
async def export_training_csv(store: StoreDep, moderator: ModeratorDep) -> Response:
    """Verified submissions as a training manifest with their verified ``boxes``; paths resolve inside
    ``training.zip``, and boxes are in pixels of its photos."""
    records = await run_in_threadpool(exports.verified_records, store)
    text = exports.training_csv(records)
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={**NO_STORE, **_attachment("training.csv")}
    )


def _started_zip(store: Store) -> tuple[int, list[bytes], Iterator[bytes]]:
    """The photo count, the zip's first chunks (manifest and first photo) and the rest, lazily.

    Blurring the first photo before answering turns a missing detector into a 503 instead of a
    200 whose body breaks off.
    """
    records = exports.verified_records(store)
    chunks = exports.training_zip_chunks(store, records)
    head = [next(chunks), next(chunks)]  # the manifest, then the first photo (or the zip's end)
    return len(records), head, chunks


def _stream(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


@router.get(
    "/v1/export/training.zip",
    response_class=StreamingResponse,
    responses={
        200: body_response("application/zip", "manifest.csv and photos/ (blurred), streamed"),
        **MODERATOR_ERRORS,
    },
)
async def export_training_zip(store: StoreDep, moderator: ModeratorDep) -> Response:
    """``manifest.csv`` + ``photos/`` (faces and plates blurred), ready for ``camid train --data``.

    Streamed as it is built: the download starts at once, ``X-Camid-Photo-Count`` says how many
    photos follow the manifest (the progress is the number received)."""
    try:
        count, head, rest = await run_in_threadpool(_started_zip, store)
    except PrivacyError as exc:
        raise _privacy_failure(exc) from exc
    headers = {**NO_STORE, **_attachment("camid-training.zip"), "X-Camid-Photo-Count": str(count)}
    return StreamingResponse(_stream(head, rest), media_type="application/zip", headers=headers)


@router.get(
    "/v1/export/cameras.geojson",
    response_model=PublicCameraMap,
    response_class=GeoJSONResponse,
    response_description="the camera map",
    responses=error_responses(422, 503, spelled_out=True),  # errors are application/json, not GeoJSON
)
async def export_cameras_geojson(
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    model: str | None = None,
    district: str | None = None,
) -> PublicCameraMap:
    """Public: one GeoJSON point per physical camera of a target model in the registry (model,
    first/last seen dates, verified photo count, status, district), located to
    ``CAMID_PUBLIC_LOCATION_DECIMALS`` (default 4: ~10 m); ``model`` and ``district`` filter."""
    cameras = await public_cameras(store, settings, model, district)
    response.headers.update({**PUBLIC, "Access-Control-Allow-Origin": "*"})
    decimals = settings.public_location_decimals
    return PublicCameraMap.model_validate(registry_public.cameras_geojson(cameras, store.labels, decimals))


@router.get(
    "/v1/export/cameras.csv",
    response_class=Response,
    responses={200: body_response("text/csv", "the cameras, one row each"), **error_responses(422, 503)},
)
async def export_cameras_csv(
    store: StoreDep, settings: SettingsDep, model: str | None = None, district: str | None = None
) -> Response:
    """Public: the same cameras in the initiative's spreadsheet columns (docs/moderation.md), then
    ``status``, ``mount``, ``radius_m`` and ``district``."""
    cameras = await public_cameras(store, settings, model, district)
    return Response(
        registry_public.cameras_csv(cameras, store.labels, settings.public_location_decimals),
        media_type="text/csv; charset=utf-8",
        headers={**PUBLIC, **_attachment("cameras.csv")},
    )
