"""Third-party browser libraries vendored under ``serve/static/vendor/LIB/`` (no CDN).

``GET /static/vendor/{lib}/{path}`` serves a library's files (scripts, style sheets, images);
each library folder also holds its LICENSE and a VERSION file. Nothing outside those folders
is reachable: the path is resolved and must stay inside the library's folder.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from serve.errors import ApiError

router = APIRouter(tags=["page"])

VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor"
VENDOR_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def vendor_file(lib: str, path: str) -> Path:
    """The vendored file ``lib/path``; ApiError 404 for anything else (other types, escapes)."""
    root = (VENDOR / lib).resolve()
    target = (root / path).resolve()
    if (
        not lib
        or lib.startswith(".")
        or root.parent != VENDOR.resolve()
        or not target.is_relative_to(root)
        or target.suffix not in VENDOR_TYPES
        or not target.is_file()
    ):
        raise ApiError(404, "not_found", f"no vendored file {lib}/{path}")
    return target


@router.get("/static/vendor/{lib}/{path:path}", include_in_schema=False)
async def vendored(lib: str, path: str) -> Response:
    """A vendored library's file, cacheable for a day (the VERSION file says which release)."""
    target = vendor_file(lib, path)
    return FileResponse(
        target, media_type=VENDOR_TYPES[target.suffix], headers={"Cache-Control": "public, max-age=86400"}
    )
