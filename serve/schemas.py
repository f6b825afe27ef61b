"""Response models, for the OpenAPI document (``/docs``) and schema checks; handlers return dicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported"])
    message: str


class ErrorResponse(BaseModel):
    """Every error: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


class Score(BaseModel):
    label: str
    score: float = Field(ge=0, le=1)


class ModelRef(BaseModel):
    name: str
    version: str


class ImageFacts(BaseModel):
    width: int
    height: int
    sha256: str
    phash: str


class Location(BaseModel):
    lat: float
    lon: float
    source: str = Field(examples=["exif"])


class ClassificationResult(BaseModel):
    """One photo's result; ``probabilities`` are calibrated, sorted high to low and sum to 1."""

    model_config = ConfigDict(extra="allow")

    label: str = Field(examples=["huawei_ipc6625_z30"])
    confidence: float = Field(ge=0, le=1)
    decision: Literal["flag", "review", "reject"]
    probabilities: list[Score]
    model: ModelRef
    image: ImageFacts
    location: Location | None = None
    heatmap_png: str | None = Field(
        None,
        description="base64 PNG: where the model looked, over the model's input; only with ?heatmap=true",
    )


class ClassifyResponse(BaseModel):
    """``results[i]`` is the result for the i-th ``image`` part of the request."""

    results: list[ClassificationResult]


class ModelDescription(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    architecture: str = ""
    labels: list[str]
    targets: list[str] = Field(default_factory=list)
    thresholds: dict[str, float]
    temperature: float
    metrics: dict[str, Any] = Field(default_factory=dict)
    trained_on: dict[str, Any] = Field(default_factory=dict)


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]


ERROR_TEXTS: dict[int, str] = {
    400: "not a decodable photo, or a malformed request",
    401: "missing or unknown moderator token",
    403: "the token may not do this",
    404: "no such resource",
    408: "the upload did not arrive in time",
    409: "changed by someone else meanwhile",
    413: "a photo or the request is too large (bytes or pixels)",
    415: "not a supported image type (sniffed from the bytes)",
    422: "missing or invalid fields",
    429: "too many requests from this client; see Retry-After",
    503: "overloaded, starting or timed out; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries (the error JSON shape) for the given statuses."""
    return {status: {"model": ErrorResponse, "description": ERROR_TEXTS[status]} for status in statuses}


# Every error status the API uses, for routes that may answer any of them.
ERROR_RESPONSES = error_responses(*ERROR_TEXTS)
