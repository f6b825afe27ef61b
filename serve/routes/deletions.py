"""Erasure: ``DELETE /v1/submissions/{id}`` removes a submission and its photo; ``GET /v1/deletions``
is the audit trail of what was deleted (who, when, why; never the photo or its metadata)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from serve.deps import ModeratorDep, StoreDep
from serve.errors import ApiError
from serve.schemas import error_responses
from serve.store import NotFoundError
from serve.store.store import MAX_REASON

router = APIRouter(tags=["submissions"])

MODERATOR_ERRORS = error_responses(401, 403, 503)  # token missing/unknown, revoked, store not open


class DeleteRequest(BaseModel):
    """Why the submission goes (kept in the audit trail)."""

    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON,
        examples=["erasure request from the photographer"],
        description="why it is deleted: erasure request, spam, illegal content, …",
    )


class DeletionView(BaseModel):
    """The audit row of one deleted submission."""

    submission_id: str
    sha256: str = Field(description="of the uploaded photo; the photo itself is gone")
    deleted_at: str
    deleted_by: str = Field(description="the moderator, 'cli:<user>' or 'retention'")
    reason: str
    status: str = Field(description="the submission's status when it was deleted")
    photo_removed: bool = Field(
        description="false when another submission sent the same bytes and keeps the photo"
    )


class DeletionPage(BaseModel):
    items: list[DeletionView]


@router.delete(
    "/v1/submissions/{submission_id}",
    response_model=DeletionView,
    response_description="deleted; the audit row kept",
    responses={**MODERATOR_ERRORS, **error_responses(404, 422)},
)
async def delete_submission(
    submission_id: str, body: DeleteRequest, store: StoreDep, moderator: ModeratorDep
) -> DeletionView:
    """Delete a submission, its reviews, its photo and every copy of it (blurred, cached); the audit
    trail keeps who, when, why, the id and the photo's sha256. Exports and other submissions'
    reviews are unaffected; submissions that repeated it now repeat the oldest of them."""
    if not body.reason.strip():
        raise ApiError(422, "missing_reason", "reason: say why the submission is deleted")
    try:
        row = await run_in_threadpool(
            store.delete_submission, submission_id, by=moderator.name, reason=body.reason
        )
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return DeletionView.model_validate(row)


@router.get(
    "/v1/deletions", response_model=DeletionPage, responses={**MODERATOR_ERRORS, **error_responses(422)}
)
async def list_deletions(
    store: StoreDep, moderator: ModeratorDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DeletionPage:
    """The latest deletions, newest first."""
    return DeletionPage.model_validate({"items": await run_in_threadpool(store.deletions, limit)})
