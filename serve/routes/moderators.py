"""``GET /v1/moderators/me``: the moderator a token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from serve.deps import ModeratorDep
from serve.schemas import Moderator, error_responses

router = APIRouter(tags=["moderators"])


@router.get("/v1/moderators/me", response_model=Moderator, responses=error_responses(401, 403, 503))
async def whoami(moderator: ModeratorDep) -> Moderator:
    """The moderator the token belongs to (the page checks a token with this)."""
    return Moderator(name=moderator.name, created_at=moderator.created_at.isoformat())
