"""The public map (``/map``), its exports (KML here; GeoJSON and CSV in :mod:`serve.routes.exports`),
statistics (``/v1/stats``), the cameras' blurred photos, and the official-list comparison
(``/comparison``, ``/v1/registry/comparison[.csv]``). No login: everything here is public and
carries only what the public exports carry."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from serve.deps import SettingsDep, StoreDep
from serve.errors import ApiError
from serve.privacy import PrivacyError
from serve.registry import official
from serve.registry.districts import District, districts_for
from serve.registry.photos import popup_jpeg
from serve.registry.public import PublicCamera, cameras_kml, load_public, stats
from serve.registry.schemas import ComparisonReport, Stats
from serve.schemas import body_response, error_responses
from serve.settings import Settings
from serve.store import Store

router = APIRouter(tags=["map"])

HERE = Path(__file__).resolve().parents[1]
PAGE_FILES = {"map.js": "text/javascript", "map.css": "text/css"}
DistanceQuery = Annotated[
    float | None, Query(gt=0, le=5000, description="match radius in metres (default CAMID_OFFICIAL_MATCH_M)")
]
PUBLIC = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


@functools.cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(HERE / "templates"))


def districts(settings: Settings) -> tuple[District, ...]:
    """The configured districts; 503 naming the file when it cannot be read."""
    try:
        return districts_for(settings.districts_path)
    except ValueError as exc:
        raise ApiError(503, "districts_unavailable", str(exc)) from exc


async def public(
    store: Store, settings: Settings, model: str | None = None, district: str | None = None
) -> list[PublicCamera]:
    """The public cameras, filtered by model (label) and district; 422 for an unknown model or
    district (a misspelt filter must not look like an empty map)."""
    if model and model not in store.labels:
        raise ApiError(422, "unknown_model", f"no model {model!r}; known: {', '.join(store.labels.targets)}")
    areas = districts(settings)
    if district and district not in {d.name for d in areas}:
        known = ", ".join(d.name for d in areas) or "none (no districts file is configured)"
        raise ApiError(422, "unknown_district", f"no district {district!r}; known: {known}")
    return await run_in_threadpool(load_public, store, areas, model or None, district or None)


def tile_origin(url: str) -> str:
    """The origin a tile URL template loads from, as a CSP source (``{s}`` subdomains as ``*``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
async def map_page(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """The public map: clustered cameras coloured by model, filters, downloads and a chart."""
    config = {
        "tileUrl": settings.map_tile_url,
        "attribution": settings.map_tile_attribution,
        "models": [{"label": c.name, "model": c.display_name} for c in store.labels.classes if c.target],
        "districts": [d.name for d in districts(settings)],
    }
    tiles = tile_origin(settings.map_tile_url)
    csp = (
        f"default-src 'self'; img-src 'self' data: blob: {tiles}; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'"
    )
    return _templates().TemplateResponse(
        request, "map.html", {"config": config}, headers={"Content-Security-Policy": csp}
    )


@router.get("/map/static/{name}", include_in_schema=False)
async def map_static(name: str) -> Response:
    """The map page's own script and style sheet."""
    if name not in PAGE_FILES:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    return FileResponse(
        HERE / "static" / name, media_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/v1/export/cameras.kml",
    response_class=Response,
    responses={
        200: body_response("application/vnd.google-earth.kml+xml", "the cameras"),
        **error_responses(422, 503),
    },
)
async def export_cameras_kml(
    store: StoreDep, settings: SettingsDep, model: str | None = None, district: str | None = None
) -> Response:
    """Public: the cameras as KML placemarks (Google Earth, OsmAnd, QGIS), same filters as the map."""
    cameras = await public(store, settings, model, district)
    return Response(
        cameras_kml(cameras, store.labels, settings.public_location_decimals),
        media_type="application/vnd.google-earth.kml+xml",
        headers={**PUBLIC, "Content-Disposition": 'attachment; filename="cameras.kml"'},
    )


@router.get("/v1/stats", response_model=Stats, responses=error_responses(422, 503))
async def camera_stats(
    store: StoreDep, settings: SettingsDep, model: str | None = None, district: str | None = None
) -> dict[str, Any]:
    """Public: cameras per model, per district and per month first seen (``YYYY-MM``)."""
    return stats(await public(store, settings, model, district), store.labels)


@router.get(
    "/v1/cameras/{camera_id}/photo.jpg",
    response_class=Response,
    responses={
        200: body_response("image/jpeg", "the camera, faces and plates blurred"),
        **error_responses(404, 503),
    },
)
async def camera_photo(camera_id: str, store: StoreDep, settings: SettingsDep) -> Response:
    """Public: a small photo of a public camera (its latest verified photo around its box), blurred."""
    found = [c for c in await public(store, settings) if c.id == camera_id]
    if not found:
        raise ApiError(404, "not_found", f"no public camera {camera_id!r}")
    try:
        data = await run_in_threadpool(popup_jpeg, store, found[0].photo_submission, found[0].photo_box)
    except PrivacyError as exc:
        raise ApiError(503, "privacy_unavailable", f"photos cannot be shown unblurred: {exc}") from exc
    return Response(data, media_type="image/jpeg", headers=PUBLIC)


async def _comparison(store: Store, settings: Settings, distance: float | None) -> dict[str, Any]:
    areas = districts(settings)
    cameras = await public(store, settings)

    def entries() -> list[official.OfficialEntry]:
        with store.session() as s:
            return official.official_entries(s)

    listed = await run_in_threadpool(entries)
    radius = distance or settings.official_match_m
    result = official.compare(listed, cameras, radius, areas)
    rows = official.comparison_rows(result, areas, settings.public_location_decimals)
    return {
        "distance_m": radius,
        "counts": {
            "official": len(listed),
            "citizens": len(cameras),
            "matched": len(result.matched),
            "citizens_only": len(result.citizens_only),
            "official_only": len(result.official_only),
        },
        "per_district": result.per_district,
        "rows": rows,
    }


@router.get("/v1/registry/comparison", response_model=ComparisonReport, responses=error_responses(422, 503))
async def comparison(
    store: StoreDep, settings: SettingsDep, distance: DistanceQuery = None
) -> dict[str, Any]:
    """Public: the official list against the verified cameras (matched, citizens only, official only)."""
    return await _comparison(store, settings, distance)


@router.get(
    "/v1/registry/comparison.csv",
    response_class=Response,
    responses={
        200: body_response("text/csv", "one row per camera or official entry"),
        **error_responses(503),
    },
)
async def comparison_csv(store: StoreDep, settings: SettingsDep, distance: DistanceQuery = None) -> Response:
    """Public: the comparison's three lists as CSV (column ``kind``)."""
    report = await _comparison(store, settings, distance)
    return Response(
        official.comparison_csv(report["rows"]),
        media_type="text/csv; charset=utf-8",
        headers={**PUBLIC, "Content-Disposition": 'attachment; filename="comparison.csv"'},
    )


@router.get("/comparison", response_class=HTMLResponse, include_in_schema=False)
async def comparison_page(
    request: Request, store: StoreDep, settings: SettingsDep, distance: DistanceQuery = None
) -> Response:
    """The comparison as a page: the counts, the per-district table and the three lists."""
    report = await _comparison(store, settings, distance)
    return _templates().TemplateResponse(
        request,
        "comparison.html",
        {"report": report},
        headers={"Content-Security-Policy": "default-src 'self'"},
    )
