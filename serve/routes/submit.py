"""The public submit page (``GET /submit``): a citizen takes or chooses a photo, says where the
camera is, and sees the verdict in plain words; no login.

``POST /v1/submit`` stores the photo through the one intake path (source ``submit``) and answers
with the verdict in the page's language, the boxes of the cameras found, a small preview (the
stored photo: upright, metadata stripped; HEIC too, which browsers cannot show) and a follow link
with an unguessable token. ``GET /v1/follow/{token}`` tells only that submission's status.
Texts live in ``serve/web/i18n/<lang>.json`` (Serbian by default) for volunteers to edit.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from data.geo import parse_location
from data.images import ImageLimits
from data.labels import LabelSet
from serve.deps import (
    EngineDep,
    ImageLimitsDep,
    PoolDep,
    SettingsDep,
    StoreDep,
    UploadGateDep,
    UploadLimitsDep,
)
from serve.engine import Engine
from serve.errors import ApiError
from serve.intake.intake import IntakeItem, IntakeRules, Intook, follow_location, follow_status, take_in
from serve.ratelimit import client_address, enforce_rate
from serve.schemas import Location, error_responses, image_form_body
from serve.store import Store
from serve.uploads import read_multipart

router = APIRouter(tags=["submit"])


HERE = Path(__file__).resolve().parents[1]
I18N = HERE / "web" / "i18n"
DEFAULT_LANG = "sr"
PAGE_FILES = {"submit.js": "text/javascript", "submit.css": "text/css"}
MAX_NOTE = 2000
MAX_LOCATION = 500
PREVIEW_SIDE = 800
SUBMIT_FORM = image_form_body(
    many=False,
    location={"type": "string", "maxLength": MAX_LOCATION, "description": "44.8125, 20.4612 or a map link"},
    note={"type": "string", "maxLength": MAX_NOTE},
    lang={"type": "string", "description": "the language of 'message' (sr, en)"},
)


class FoundCamera(BaseModel):
    """A camera the model found, with its model's display name."""

    box: list[float] = Field(description="[x0, y0, x1, y1] in the upright photo's pixels (width x height)")
    label: str = Field(examples=["Huawei IPC6625-Z30"])
    confidence: float


class SubmitAnswer(BaseModel):
    """The submit page's answer: the verdict in words, what to draw, and the follow link."""

    status: str = Field(examples=["pending"])
    message: str = Field(description="the verdict in plain words, in the page's language")
    label: str
    decision: str = Field(examples=["flag"])
    duplicate: bool = Field(description="the same photo, or a look-alike from the same place, came before")
    location: Location | None
    width: int
    height: int
    cameras: list[FoundCamera]
    preview: str = Field(description="the stored photo, small, as a JPEG data URL")
    follow_url: str = Field(description="the page that shows this submission's status (keep it)")


class LateLocation(BaseModel):
    """Where the camera is, sent after the photo: coordinates or a map link."""

    location: str = Field(max_length=MAX_LOCATION, examples=["44.8125, 20.4612"])


class LocationAdded(BaseModel):
    """The location now kept with the submission."""

    location: Location


class FollowStatus(BaseModel):
    """All a follow token shows: the status and the day the photo arrived."""

    status: str = Field(examples=["pending"])
    received: str = Field(examples=["2026-12-04"])


@functools.cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(HERE / "templates"))


@functools.cache
def languages() -> tuple[str, ...]:
    """The page's languages: one ``<lang>.json`` each in ``serve/web/i18n``, Serbian first."""
    found = sorted(p.stem for p in I18N.glob("*.json"))
    return (DEFAULT_LANG, *(lang for lang in found if lang != DEFAULT_LANG))


@functools.cache
def texts(lang: str) -> dict[str, Any]:
    """The page's texts in ``lang``; keys a translation lacks fall back to Serbian."""
    base: dict[str, Any] = json.loads((I18N / f"{DEFAULT_LANG}.json").read_text(encoding="utf-8"))
    if lang == DEFAULT_LANG:
        return base
    own: dict[str, Any] = json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8"))
    return {**base, **own, "errors": {**base.get("errors", {}), **own.get("errors", {})}}


def _lang(value: str | None) -> str:
    return value if value in languages() else DEFAULT_LANG


def _rate_limit(request: Request, settings: SettingsDep) -> None:
    """The API's per-address submission limit applies to the page too (one shared budget)."""
    enforce_rate(request, "submissions", settings.submissions_per_minute, "submissions")


@router.get("/submit", response_class=HTMLResponse, include_in_schema=False)
async def submit_page(request: Request, settings: SettingsDep, lang: str | None = None) -> Response:
    """The page; ``?lang=en`` for English, ``?follow=TOKEN`` shows a submission's status."""
    chosen = _lang(lang)
    tile_url = str(getattr(settings, "map_tile_url", "") or "")
    config = {
        "lang": chosen,
        "tileUrl": tile_url,
        "attribution": getattr(settings, "map_tile_attribution", ""),
    }
    others = [{"code": c, "name": texts(c)["lang_name"]} for c in languages() if c != chosen]
    tiles = _origin(tile_url)
    csp = (
        f"default-src 'self'; img-src 'self' data: blob: {tiles}; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'"
    )
    return _templates().TemplateResponse(
        request,
        "submit.html",
        {"t": texts(chosen), "config": config, "others": others},
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"},
    )


def _origin(url: str) -> str:
    """Where map tiles load from, as a CSP source (``{s}`` subdomains as ``*``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


@router.get("/submit/static/{name}", include_in_schema=False)
async def submit_static(name: str) -> Response:
    """The page's own script and style sheet."""
    if name not in PAGE_FILES:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    return FileResponse(
        HERE / "static" / name, media_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"}
    )


def _location(fields: dict[str, str]) -> tuple[float, float] | None:
    text = fields.get("location", "").strip()
    if not text:
        return None
    if len(text) > MAX_LOCATION:
        raise ApiError(422, "invalid_location", f"location is too long; at most {MAX_LOCATION} characters")
    found = parse_location(text)
    if found is None:
        raise ApiError(
            422,
            "invalid_location",
            f"no location in {text[:60]!r}; type latitude, longitude (44.8125, 20.4612) or paste a map link",
        )
    return (found.lat, found.lon)


def _preview(stored: Intook) -> str:
    image = stored.photo.image.copy()
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)  # a new file: no metadata
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def verdict_words(result: dict[str, Any], labels: LabelSet, t: dict[str, Any]) -> str:
    """The verdict in plain words: a target camera flagged or in doubt, another camera, or none."""
    label = str(result["label"])
    name = labels.get(label).display_name if label in labels else label
    if label == labels.negative:
        return str(t["verdict_none"])
    if not labels.is_target(label):
        return str(t["verdict_camera"])
    key = "verdict_flag" if result.get("decision") == "flag" else "verdict_review"
    return str(t[key]).replace("{camera}", name)


def _answer(stored: Intook, labels: LabelSet, lang: str) -> dict[str, Any]:
    result = stored.view["result"]
    names = {c.name: c.display_name for c in labels.classes}
    cameras = [
        {"box": c["box"], "label": names.get(c["label"], c["label"]), "confidence": c["confidence"]}
        for c in result.get("cameras") or []
    ]
    return {
        "status": stored.view["status"],
        "message": verdict_words(result, labels, texts(lang)),
        "label": result["label"],
        "decision": result["decision"],
        "duplicate": stored.view["duplicate_of"] is not None,
        "location": result.get("location"),
        "width": stored.photo.width,
        "height": stored.photo.height,
        "cameras": cameras,
        "preview": _preview(stored),
        "follow_url": f"/submit?follow={stored.follow_token}&lang={lang}",
    }


def _take(
    engine: Engine, store: Store, data: bytes, fields: dict[str, str], limits: ImageLimits
) -> dict[str, Any]:
    lang = _lang(fields.get("lang"))
    note = fields.get("note", "").strip()
    if len(note) > MAX_NOTE:
        raise ApiError(
            422, "field_too_long", f"note is too long ({len(note):,} characters); at most {MAX_NOTE:,}"
        )
    item = IntakeItem(
        data=data, source="submit", location=_location(fields), location_source="form", note=note, follow=True
    )
    stored = take_in(engine, store, item, IntakeRules(image=limits))
    return _answer(stored, engine.info.labels, lang)


@router.post(
    "/v1/submit",
    status_code=201,
    dependencies=[Depends(_rate_limit)],
    response_model=SubmitAnswer,
    responses=error_responses(400, 408, 413, 415, 422, 429, 503),
    openapi_extra=SUBMIT_FORM,
)
async def submit_photo(
    request: Request,
    engine: EngineDep,
    store: StoreDep,
    pool: PoolDep,
    image_limits: ImageLimitsDep,
    upload_limits: UploadLimitsDep,
    uploads: UploadGateDep,
) -> SubmitAnswer:
    """The submit page's upload: multipart ``image`` + optional ``location`` (coordinates or a map
    link), ``note``, ``lang``; the verdict in plain words and the follow link."""
    pool.check_room()
    limits = upload_limits.for_one_file(max_field_bytes=4 * MAX_NOTE)
    with uploads.enter(client_address(request)) as allowance:
        form = await read_multipart(request, limits=limits, allowance=allowance)
        photos = form.files_in("image")
        if not photos:
            raise ApiError(422, "missing_field", "no photo sent; choose or take a photo")
        answer = await pool.run(_take, engine, store, photos[0], form.fields, image_limits)
    return SubmitAnswer.model_validate(answer)


@router.get("/v1/follow/{token}", response_model=FollowStatus, responses=error_responses(404, 503))
async def follow(token: str, store: StoreDep) -> FollowStatus:
    """The status of the submission a follow token belongs to, and the day it arrived; nothing else."""
    found = await run_in_threadpool(follow_status, store, token) if len(token) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", "no submission with that follow link")
    return FollowStatus.model_validate(found)


@router.post(
    "/v1/follow/{token}/location",
    response_model=LocationAdded,
    dependencies=[Depends(_rate_limit)],
    responses=error_responses(400, 404, 409, 422, 429, 503),
)
async def add_location(token: str, body: LateLocation, store: StoreDep) -> LocationAdded:
    """Add the camera's location to a pending submission sent without one (the follow token says
    which); 409 when it has a location already."""
    given = _location({"location": body.location})
    if given is None:
        raise ApiError(422, "invalid_location", "send the location: 44.8125, 20.4612 or a map link")
    done = (
        await run_in_threadpool(follow_location, store, token, given[0], given[1])
        if len(token) <= 64
        else None
    )
    if done is None:
        raise ApiError(404, "not_found", "no submission with that follow link")
    if not done:
        raise ApiError(409, "location_set", "this submission has its location already (or was reviewed)")
    return LocationAdded.model_validate({"location": {"lat": given[0], "lon": given[1], "source": "form"}})
