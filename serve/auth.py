"""Moderator authentication: ``Authorization: Bearer TOKEN`` checked against the stored hashes.

401 when the header is missing or the token unknown, 403 when the moderator was revoked. The
dependency that puts it together (``ModeratorDep``) is in :mod:`serve.deps`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve.errors import ApiError
from serve.store import ModeratorInfo, Store

__all__ = ["BEARER", "bearer_token", "check_moderator"]

# Parses the header and documents the scheme in OpenAPI (/docs); the 401 is ours, in our error shape.
BEARER = HTTPBearer(
    scheme_name="moderatorToken",
    description="a moderator token, from `camid moderators add NAME`",
    auto_error=False,
)


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


def check_moderator(store: Store, token: str) -> ModeratorInfo:
    """The moderator ``token`` belongs to; 401 unknown, 403 revoked (blocking: a store query)."""
    moderator = store.authenticate(token)
    if moderator is None:
        raise ApiError(401, "unauthorized", "unknown moderator token", headers={"WWW-Authenticate": "Bearer"})
    if not moderator.active:
        raise ApiError(403, "revoked", f"the token of moderator {moderator.name!r} was revoked")
    return moderator
