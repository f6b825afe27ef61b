"""The moderators' page (``GET /``) and its own script and style sheet; not in the OpenAPI document."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from serve.errors import ApiError
from serve.store import Store

router = APIRouter(tags=["page"])

HERE = Path(__file__).resolve().parents[1]
STATIC = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
NO_STORE = {"Cache-Control": "no-store"}


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
