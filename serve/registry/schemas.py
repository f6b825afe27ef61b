"""Response shapes of the public camera exports (GeoJSON, RFC 7946: ``[lon, lat]``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serve.schemas import CameraProperties, PointGeometry


class PublicCameraProperties(CameraProperties):
    """A physical camera: model, dates seen (no time of day), verified photo count, and where."""

    status: str = Field(description="active, removed or disputed")
    mount: str | None = Field(description="pole, wall or mast; null when not recorded")
    radius_m: int = Field(ge=0, description="uncertainty of the location, in metres")
    district: str | None = Field(description="the district holding it (null without a districts file)")
    photo_url: str = Field(description="a small photo of it, faces and plates blurred")


class PublicCameraFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: PublicCameraProperties


class PublicCameraMap(BaseModel):
    """GeoJSON FeatureCollection: one Point per physical camera of a target model."""

    type: Literal["FeatureCollection"]
    features: list[PublicCameraFeature]


class CountRow(BaseModel):
    count: int = Field(ge=0)


class ModelCount(CountRow):
    label: str
    model: str


class DistrictCount(CountRow):
    district: str | None = Field(description="null: outside every district (or no districts file)")


class MonthCount(CountRow):
    month: str = Field(examples=["2026-11"], description="the month the cameras were first seen")


class Stats(BaseModel):
    """Public cameras counted per model, per district and per month first seen."""

    total: int = Field(ge=0)
    per_model: list[ModelCount]
    per_district: list[DistrictCount]
    per_month: list[MonthCount]


class CameraPhotoEntry(BaseModel):
    """One box of one submission that shows the camera (``box`` null: the whole photo)."""

    id: int = Field(description="the entry's id (for a split)")
    submission_id: str
    box_index: int
    label: str
    box: list[float] | None
    status: str = Field(description="the submission's status; only verified photos are public")
    taken_at: str
    lat: float | None
    lon: float | None


class CameraEventView(BaseModel):
    """One entry of a camera's audit trail."""

    at: str
    by: str
    action: str = Field(description="create, attach, detach, merge, split or update")
    other_camera_id: str | None
    submission_id: str | None
    detail: dict[str, Any] | None


class CameraSummary(BaseModel):
    id: str
    label: str
    lat: float | None
    lon: float | None
    spread_m: float | None = Field(description="how far its farthest photo lies from its location")
    radius_m: float | None = Field(description="the uncertainty of its location (at least 10 m)")
    mount: str | None
    status: str
    merged_into: str | None
    photo_count: int = Field(ge=0, description="verified photos")


class CameraView(CameraSummary):
    """A camera as moderators see it, with its photo entries and audit trail."""

    note: str
    first_seen: str | None
    last_seen: str | None
    photos: list[CameraPhotoEntry]
    events: list[CameraEventView]


class CameraList(BaseModel):
    items: list[CameraSummary]
    total: int = Field(ge=0)


class CandidateView(BaseModel):
    """A camera a box may show."""

    camera_id: str
    label: str
    model: str
    distance_m: float | None
    photo_count: int
    same_label: bool
    near_duplicate: bool
    spread_m: float | None = Field(default=None, description="how far its photos lie from its location")
    text: str = Field(examples=["same as camera cam-3f2a9c0d, Huawei IPC6625-Z30, 14 m away, 3 photos"])


class BoxCameras(BaseModel):
    box_index: int
    label: str
    box: list[float] | None
    camera_id: str | None = Field(description="the camera the box shows now (null: not attached)")
    candidates: list[CandidateView]


class SubmissionCameras(BaseModel):
    submission_id: str
    boxes: list[BoxCameras]


class ComparisonCounts(BaseModel):
    official: int
    citizens: int
    matched: int
    citizens_only: int
    official_only: int


class ComparisonReport(BaseModel):
    """The official list against the verified cameras; ``rows`` as in the CSV (column ``kind``);
    ``per_district`` (with districts) ends with ``outside the districts``, what lies in none."""

    distance_m: float
    counts: ComparisonCounts
    per_district: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
