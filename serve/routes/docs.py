"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from local files, so they work offline.

The JavaScript and CSS come from the ``fastapi-offline`` package (``fastapi_offline/static``),
served under ``/docs/static/``; no page here loads anything from a CDN or Google Fonts.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from serve.errors import ApiError

router = APIRouter(include_in_schema=False)

STATIC_URL = "/docs/static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


@functools.cache
def assets_folder() -> Path:
    """Where the installed ``fastapi-offline`` keeps Swagger UI and ReDoc."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for ``/openapi.json``."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_ui_parameters={"validatorUrl": None},  # the default badge asks validator.swagger.io
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc for ``/openapi.json``."""
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
        with_google_fonts=False,
    )


@router.get(STATIC_URL + "/{name}")
async def asset(name: str) -> Response:
    """One of the files the two pages load."""
    media = ASSETS.get(name)
    if media is None:
        raise ApiError(404, "not_found", f"no documentation asset {name!r}")
    path = assets_folder() / name
    if not path.is_file():
        raise ApiError(
            404, "docs_assets_missing", f"{path} is missing; reinstall camid (it needs fastapi-offline)"
        )
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})
