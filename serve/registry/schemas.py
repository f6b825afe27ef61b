"""Response shapes of the public camera exports (GeoJSON, RFC 7946: ``[lon, lat]``)."""

from __future__ import annotations

from typing import Literal

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
