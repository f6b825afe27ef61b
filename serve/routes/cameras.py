"""The camera registry for moderators: a camera and its audit trail, edits, merge, split, and the
cameras a verified submission's boxes show (with the candidates the page proposes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from serve.deps import ModeratorDep, StoreDep
from serve.errors import ApiError
from serve.registry import cameras as registry
from serve.registry.schemas import CameraList, CameraView, SubmissionCameras
from serve.schemas import error_responses
from serve.store import Camera, NotFoundError, Store

router = APIRouter(tags=["cameras"])
ERRORS = error_responses(401, 403, 404, 409, 422, 503)
BODY_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 503)  # 400: a JSON body that does not parse
T = TypeVar("T")


class Assignment(BaseModel):
    """Per camera box (its index in the submission's ``boxes``): an existing camera id or ``"new"``."""

    boxes: dict[int, str] = Field(examples=[{"0": "cam-3f2a9c0d1e2b4a5c", "1": "new"}])


class MergeRequest(BaseModel):
    into: str = Field(description="the camera that keeps the photos")
    note: str = Field(default="", max_length=2000)


class SplitRequest(BaseModel):
    photos: list[int] = Field(min_length=1, description="ids of the camera's photo entries to move")
    note: str = Field(default="", max_length=2000)


class CameraEdit(BaseModel):
    status: str | None = Field(default=None, description="active, removed or disputed")
    mount: str | None = Field(default=None, description="pole, wall or mast")
    label: str | None = None
    note: str | None = Field(default=None, max_length=2000)


async def _in_session(store: Store, write: bool, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction off the event loop; registry errors become HTTP errors."""

    def run() -> T:
        with store.session(write=write) as s:
            return work(s)

    try:
        return await run_in_threadpool(run)
    except NotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except registry.InvalidEdit as exc:
        raise ApiError(422, "invalid_edit", str(exc)) from exc
    except registry.RegistryError as exc:
        raise ApiError(409, "registry_conflict", str(exc)) from exc


@router.get("/v1/cameras", response_model=CameraList, responses=ERRORS)
async def list_cameras(
    store: StoreDep, moderator: ModeratorDep, include_merged: bool = False
) -> dict[str, Any]:
    """Every camera of the registry with its location, spread, status and verified photo count."""

    def work(s: Session) -> dict[str, Any]:
        query = select(Camera).order_by(Camera.created_at, Camera.id)
        if not include_merged:
            query = query.where(Camera.status != "merged")
        rows = s.scalars(query).all()
        counts = registry.photo_counts(s, [c.id for c in rows])
        keys = ("id", "label", "lat", "lon", "spread_m", "radius_m", "mount", "status", "merged_into")
        items = [{**{k: getattr(c, k) for k in keys}, "photo_count": counts.get(c.id, 0)} for c in rows]
        return {"items": items, "total": len(items)}

    return await _in_session(store, False, work)


@router.get("/v1/cameras/{camera_id}", response_model=CameraView, responses=ERRORS)
async def get_camera(camera_id: str, store: StoreDep, moderator: ModeratorDep) -> dict[str, Any]:
    """One camera: location and spread, every photo entry (submission, box, status), its audit trail."""
    return await _in_session(store, False, lambda s: registry.camera_json(s, camera_id))


@router.patch("/v1/cameras/{camera_id}", response_model=CameraView, responses=BODY_ERRORS)
async def edit_camera(
    camera_id: str, edit: CameraEdit, store: StoreDep, moderator: ModeratorDep
) -> dict[str, Any]:
    """Set a camera's status, mount, model or note (audited with the old values)."""
    changes = edit.model_dump(exclude_unset=True)
    if not changes:
        raise ApiError(422, "nothing_to_change", "send at least one of status, mount, label, note")
    return await _in_session(
        store, True, lambda s: registry.update_camera(s, camera_id, changes, store.labels, moderator.name)
    )


@router.post("/v1/cameras/{camera_id}/merge", response_model=CameraView, responses=BODY_ERRORS)
async def merge_camera(
    camera_id: str, body: MergeRequest, store: StoreDep, moderator: ModeratorDep
) -> dict[str, Any]:
    """Merge this camera into ``into``: its photos move there, it stays as ``merged`` (audited)."""
    return await _in_session(
        store, True, lambda s: registry.merge(s, camera_id, body.into, moderator.name, body.note)
    )


@router.post(
    "/v1/cameras/{camera_id}/split", status_code=201, response_model=CameraView, responses=BODY_ERRORS
)
async def split_camera(
    camera_id: str, body: SplitRequest, store: StoreDep, moderator: ModeratorDep
) -> dict[str, Any]:
    """Move the given photo entries to a new camera (answered with it); at least one stays."""
    return await _in_session(
        store, True, lambda s: registry.split(s, camera_id, body.photos, moderator.name, body.note)
    )


@router.get("/v1/submissions/{submission_id}/cameras", response_model=SubmissionCameras, responses=ERRORS)
async def submission_cameras(submission_id: str, store: StoreDep, moderator: ModeratorDep) -> dict[str, Any]:
    """Per camera box of the submission: the camera it shows now and the candidates it may show
    ("same as camera cam-…, Huawei IPC6625-Z30, 14 m away, 3 photos"), best first."""
    boxes = await _in_session(store, False, lambda s: registry.candidates(s, submission_id, store.labels))
    return {"submission_id": submission_id, "boxes": boxes}


@router.post(
    "/v1/submissions/{submission_id}/cameras", response_model=SubmissionCameras, responses=BODY_ERRORS
)
async def assign_cameras(
    submission_id: str, body: Assignment, store: StoreDep, moderator: ModeratorDep
) -> dict[str, Any]:
    """Attach each named box of a verified submission to the camera chosen (or a new one)."""
    boxes = await _in_session(
        store, True, lambda s: registry.assign(s, submission_id, body.boxes, store.labels, moderator.name)
    )
    return {"submission_id": submission_id, "boxes": boxes}
