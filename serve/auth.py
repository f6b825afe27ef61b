"""Moderator authentication: ``Authorization: Bearer TOKEN`` checked against the stored hashes.

401 when the header is missing or the token unknown, 403 when the moderator was revoked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from serve.errors import ApiError
from serve.store import ModeratorInfo, Store

__all__ = ["BEARER", "ModeratorDep", "StoreDep", "bearer_token", "current_moderator", "get_store"]

# Parses the header and documents the scheme in OpenAPI (/docs); the 401 is ours, in our error shape.
BEARER = HTTPBearer(
    scheme_name="moderatorToken",
    description="a moderator token, from `camid moderators add NAME`",
    auto_error=False,
)


def get_store(request: Request) -> Store:
    """The store the app opened in its lifespan (``app.state.store``)."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise ApiError(503, "store_unavailable", "the submissions store is not open; check the server log")
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> str:
    """The token of an ``Authorization: Bearer …`` header, or 401."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "moderator token required: send 'Authorization: Bearer TOKEN' "
            "(tokens come from `camid moderators add NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credentials.credentials


async def current_moderator(token: Annotated[str, Depends(bearer_token)], store: StoreDep) -> ModeratorInfo:
    """The moderator whose token the request carries; 401 unknown, 403 revoked."""
    moderator = await run_in_threadpool(store.authenticate, token)
    if moderator is None:
        raise ApiError(401, "unauthorized", "unknown moderator token", headers={"WWW-Authenticate": "Bearer"})
    if not moderator.active:
        raise ApiError(403, "revoked", f"the token of moderator {moderator.name!r} was revoked")
    return moderator


ModeratorDep = Annotated[ModeratorInfo, Depends(current_moderator)]
