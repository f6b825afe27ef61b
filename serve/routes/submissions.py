"""Submissions: citizens send photos (``POST /v1/submissions``); moderators list, view and review them.

A submission's photo and its heatmap (computed on demand) are served here too.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from data.boxes import LabeledBox
from data.images import ImageLimits, load_image
from serve.deps import (
    EngineDep,
    ImageLimitsDep,
    ModeratorDep,
    PoolDep,
    SettingsDep,
    StoreDep,
    UploadGateDep,
    UploadLimitsDep,
)
from serve.engine import Engine
from serve.errors import ApiError, error_body
from serve.intake.intake import IntakeItem, IntakeRules, take_in
from serve.ratelimit import client_address, enforce_rate
from serve.schemas import (
    MAX_REVIEW_BOXES,
    ClaimHeld,
    ErrorResponse,
    ReviewBox,
    StaleRevision,
    SubmissionCreated,
    SubmissionPage,
    SubmissionView,
    body_response,
    error_responses,
    image_form_body,
)
from serve.store import ClaimedError, ConflictError, CursorError, NotFoundError, ReviewError, Store
from serve.uploads import read_multipart

router = APIRouter(tags=["submissions"])

MAX_NOTE = 2000
MAX_SOURCE = 64

SUBMISSION_FORM = image_form_body(
    many=False,
    lat={"type": "number", "minimum": -90, "maximum": 90},
    lon={"type": "number", "minimum": -180, "maximum": 180},
    source={"type": "string", "maxLength": MAX_SOURCE, "description": "where it came from (app, bot…)"},
    note={"type": "string", "maxLength": MAX_NOTE},
)
MODERATOR_ERRORS = error_responses(401, 403, 503)  # token missing/unknown, revoked, store not open


class ReviewRequest(BaseModel):
    """A moderator's decision on the revision of a submission they saw."""

    verdict: Literal["confirm", "correct", "reject"]
    label: str | None = Field(None, max_length=64, description="required for 'correct'")
    note: str = Field("", max_length=MAX_NOTE)
    revision: int = Field(ge=0, description="the 'revision' of the submission the moderator saw")
    boxes: list[ReviewBox] | None = Field(
        None,
        max_length=MAX_REVIEW_BOXES,
        description="the cameras in the photo, in its upright original pixels (confirm/correct only); "
        "a confirm without boxes keeps the model's",
    )

    def labeled_boxes(self) -> list[LabeledBox] | None:
        """``boxes`` as the store takes them."""
        if self.boxes is None:
            return None
        return [LabeledBox(b.label, (b.box[0], b.box[1], b.box[2], b.box[3])) for b in self.boxes]


def _rate_limit(request: Request, settings: SettingsDep) -> None:
    """429 with Retry-After when this client IP sent too many submissions this minute."""
    enforce_rate(request, "submissions", settings.submissions_per_minute, "submissions")


def _coordinate(fields: dict[str, str], name: str, limit: float) -> float | None:
    text = fields.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(422, "invalid_location", f"{name}: {text[:20]!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise ApiError(422, "invalid_location", f"{name}: must be between -{limit:g} and {limit:g}")
    return value


def _form_location(fields: dict[str, str]) -> tuple[float, float] | None:
    lat, lon = _coordinate(fields, "lat", 90.0), _coordinate(fields, "lon", 180.0)
    if (lat is None) != (lon is None):
        raise ApiError(422, "invalid_location", "send lat and lon together, or neither")
    return None if lat is None or lon is None else (lat, lon)


def _text_field(fields: dict[str, str], name: str, limit: int) -> str:
    value = fields.get(name, "").strip()
    if len(value) > limit:
        raise ApiError(
            422, "field_too_long", f"{name} is too long ({len(value):,} characters); at most {limit:,}"
        )
    return value


def classify_and_store(
    engine: Engine, store: Store, data: bytes, fields: dict[str, str], limits: ImageLimits
) -> SubmissionCreated:
    """Decode, classify and store one submission through the one intake path (blocking; run in a
    worker thread)."""
    given = _form_location(fields)
    source, note = _text_field(fields, "source", MAX_SOURCE), _text_field(fields, "note", MAX_NOTE)
    item = IntakeItem(data=data, source=source, location=given, location_source="form", note=note)
    stored = take_in(engine, store, item, IntakeRules(image=limits))
    return SubmissionCreated.model_validate(stored.created())


@router.post(
    "/v1/submissions",
    status_code=201,
    dependencies=[Depends(_rate_limit)],
    response_model=SubmissionCreated,
    response_model_exclude_unset=True,
    response_description="stored for moderation; the model's result",
    responses=error_responses(400, 408, 413, 415, 422, 429, 503),
    openapi_extra=SUBMISSION_FORM,
)
async def submit(
    request: Request,
    engine: EngineDep,
    store: StoreDep,
    pool: PoolDep,
    image_limits: ImageLimitsDep,
    upload_limits: UploadLimitsDep,
    uploads: UploadGateDep,
) -> SubmissionCreated:
    """Classify one photo and keep it for moderation (metadata stripped; EXIF GPS used if no lat/lon)."""
    pool.check_room()  # a full queue refuses at once, before the upload is read
    # One photo: a second one is refused at its headers; a note's 2,000 characters fit 4 bytes each.
    limits = upload_limits.for_one_file(max_field_bytes=4 * MAX_NOTE)
    with uploads.enter(client_address(request)) as allowance:
        form = await read_multipart(request, limits=limits, allowance=allowance)
        photos = form.files_in("image")
        if not photos:
            raise ApiError(422, "missing_field", "no photo sent; send one photo in multipart field 'image'")
        return await pool.run(classify_and_store, engine, store, photos[0], form.fields, image_limits)


@router.get(
    "/v1/submissions",
    response_model=SubmissionPage,
    response_model_exclude_unset=True,  # the list's items carry no audit trail
    responses={**MODERATOR_ERRORS, **error_responses(422)},
)
async def list_submissions(
    store: StoreDep,
    moderator: ModeratorDep,
    status: Annotated[Literal["pending", "awaiting_second", "verified", "rejected"] | None, Query()] = None,
    decision: Annotated[Literal["flag", "review", "reject"] | None, Query()] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[Literal["uncertainty", "time", "-time"], Query()] = "uncertainty",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[
        int, Query(ge=0, description="prefer 'cursor': an offset skips items as others review")
    ] = 0,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
    unclaimed: Annotated[bool, Query(description="leave out items other moderators have claimed")] = False,
) -> SubmissionPage:
    """A page of submissions: by uncertainty (decision 'review' first, then lowest confidence) or time.

    Page on with ``cursor`` (the previous page's ``next_cursor``): it resumes right after the last
    item shown, so no item is skipped while the pending set shrinks under other moderators' reviews.
    """
    try:
        page = await run_in_threadpool(
            functools.partial(
                store.page,
                status=status,
                decision=decision,
                label=label,
                order=order,
                limit=limit,
                offset=offset,
                cursor=cursor,
                unclaimed_for=moderator.name if unclaimed else None,
            )
        )
    except CursorError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from exc
    counts = store.review_counts()
    return SubmissionPage.model_validate(
        {
            "items": page.items,
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "next_cursor": page.next_cursor,
            "counts": counts,
        }
    )


@router.post(
    "/v1/submissions/{submission_id}/claim",
    response_model=ClaimHeld,
    responses={
        409: {"model": ErrorResponse, "description": "another moderator holds it"},
        **MODERATOR_ERRORS,
        **error_responses(404, 422),
    },
)
async def claim_submission(submission_id: str, store: StoreDep, moderator: ModeratorDep) -> ClaimHeld:
    """Claim the item for the configured lease (renews your own claim); 409 names who holds it."""
    try:
        held = await run_in_threadpool(store.claim, submission_id, moderator.name)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ClaimedError as exc:
        raise ApiError(409, "claimed", str(exc)) from exc
    return ClaimHeld.model_validate(held)


@router.delete(
    "/v1/submissions/{submission_id}/claim",
    status_code=204,
    responses={**MODERATOR_ERRORS, **error_responses(404, 422)},
)
async def release_claim(submission_id: str, store: StoreDep, moderator: ModeratorDep) -> Response:
    """Give the item back to the queue (a review releases it too)."""
    try:
        await run_in_threadpool(store.release, submission_id, moderator.name)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Response(status_code=204)


@router.get(
    "/v1/submissions/{submission_id}",
    response_model=SubmissionView,
    response_model_exclude_unset=True,
    responses={**MODERATOR_ERRORS, **error_responses(404, 422)},
)
async def get_submission(submission_id: str, store: StoreDep, moderator: ModeratorDep) -> SubmissionView:
    """One submission with every review (audit trail) and the submissions that repeat it."""
    try:
        view = await run_in_threadpool(store.get, submission_id)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return SubmissionView.model_validate(view)


@router.get(
    "/v1/submissions/{submission_id}/photo",
    response_class=FileResponse,
    responses={
        200: body_response("image/jpeg", "the stored photo (metadata stripped)"),
        **MODERATOR_ERRORS,
        **error_responses(404, 422),
    },
)
async def get_photo(submission_id: str, store: StoreDep, moderator: ModeratorDep) -> Response:
    """The stored photo (metadata stripped, not blurred: for moderators' eyes only)."""
    try:
        path = await run_in_threadpool(store.photo_path, submission_id)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    if not path.is_file():
        raise ApiError(404, "photo_missing", f"the photo of submission {submission_id} is missing on disk")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.post(
    "/v1/submissions/{submission_id}/review",
    response_model=SubmissionView,
    response_model_exclude_unset=True,  # the view after a review lists no duplicates
    response_description="the submission after the review",
    responses={
        409: {
            "model": StaleRevision,
            "description": "reviewed by someone else since 'revision' (code stale_revision, with "
            "'current'), or another moderator holds a claim on it (code claimed)",
        },
        **MODERATOR_ERRORS,
        **error_responses(400, 404, 422),
    },
)
async def review_submission(
    submission_id: str, body: ReviewRequest, store: StoreDep, moderator: ModeratorDep
) -> SubmissionView | JSONResponse:
    """Append a review, with the boxes it verifies; 409 with the submission as it is now (``current``)
    when ``revision`` is stale. Bad boxes (outside the photo, unknown label) are a 422 and store nothing."""
    try:
        view = await run_in_threadpool(
            store.review,
            submission_id,
            moderator_id=moderator.id,
            verdict=body.verdict,
            label=body.label,
            note=body.note,
            revision=body.revision,
            boxes=body.labeled_boxes(),
        )
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except ReviewError as exc:
        raise ApiError(422, "invalid_review", str(exc)) from exc
    except ClaimedError as exc:
        raise ApiError(409, "claimed", str(exc)) from exc
    except ConflictError as exc:
        body_409 = {**error_body("stale_revision", str(exc)), "current": exc.current}
        stale = StaleRevision.model_validate(body_409)
        return JSONResponse(
            stale.model_dump(mode="json", exclude_unset=True),
            status_code=409,
            headers={"X-Error-Code": "stale_revision"},
        )
    return SubmissionView.model_validate(view)


def _heatmap_png(engine: Engine, store: Store, submission_id: str) -> bytes:
    img = load_image(store.photo_path(submission_id), min_side=engine.min_side)
    (prediction,) = engine.classify([img], heatmap=True)
    if prediction.heatmap_png is None:
        raise ApiError(404, "no_heatmap", "this model does not output a class-activation map")
    return prediction.heatmap_png


@router.get(
    "/v1/submissions/{submission_id}/heatmap.png",
    response_class=Response,
    responses={
        200: body_response("image/png", "the heatmap over the model's input"),
        **MODERATOR_ERRORS,
        **error_responses(404, 422),
    },
)
async def heatmap(
    submission_id: str, engine: EngineDep, pool: PoolDep, store: StoreDep, moderator: ModeratorDep
) -> Response:
    """Where the loaded model looks in the stored photo, as a PNG overlay (computed on demand)."""
    try:
        png = await pool.run(_heatmap_png, engine, store, submission_id)
    except (NotFoundError, FileNotFoundError) as exc:
        raise ApiError(404, "not_found", f"no photo for submission {submission_id!r}") from exc
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})
