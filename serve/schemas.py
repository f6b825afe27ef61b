"""The HTTP API's JSON bodies as pydantic models.

Routes declare them as ``response_model``, so every JSON response is checked against them and the
OpenAPI document (``/docs``) is generated from them. Results keep keys the models do not name
(``extra="allow"``); routes whose bodies have optional keys answer with ``exclude_unset`` so a key
that was not there is not sent as ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data.contract import ModelContract


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


class CameraResult(BaseModel):
    """One camera found in the photo; ``probabilities`` cover every class and sum to 1."""

    box: list[float] = Field(
        min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels of the upright original photo"
    )
    label: str = Field(examples=["huawei_ipc6625_z30"])
    confidence: float = Field(ge=0, le=1)
    probabilities: list[Score]


class ClassificationResult(BaseModel):
    """One photo's result; ``probabilities`` are calibrated, sorted high to low and sum to 1."""

    model_config = ConfigDict(extra="allow")

    label: str = Field(examples=["huawei_ipc6625_z30"])
    confidence: float = Field(ge=0, le=1)
    decision: Literal["flag", "review", "reject"]
    probabilities: list[Score]
    cameras: list[CameraResult] = Field(
        default_factory=list,
        description="every camera that passes its threshold, most confident first (empty: none found)",
    )
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


class ClassDescription(BaseModel):
    """One class of the loaded model, as its contract states it."""

    name: str = Field(examples=["huawei_ipc6625_z30"])
    display_name: str
    form_factor: Literal["ptz", "bullet", "dome", "box", "fisheye", "none"]
    target: bool
    description: str = ""


class Normalisation(BaseModel):
    mean: list[float]
    std: list[float]
    scale: float = 255


class OutputDescription(BaseModel):
    name: str
    shape: list[str]
    description: str = ""


class ModelDescription(BaseModel):
    """The loaded model's contract (``data/contract.py``); ``labels`` are the class names in output order."""

    name: str
    version: str
    architecture: str
    precision: str
    labels: list[str]
    targets: list[str]
    classes: list[ClassDescription] = Field(default_factory=list)
    input_size: list[int]
    resize: dict[str, Any]
    normalisation: Normalisation
    outputs: list[OutputDescription]
    thresholds: dict[str, float]
    temperature: float
    metrics: dict[str, Any]
    trained_on: dict[str, Any]

    @classmethod
    def from_contract(cls, contract: ModelContract) -> ModelDescription:
        doc = contract.to_json()
        return cls.model_validate({**doc, "labels": list(contract.names), "classes": doc["labels"]})


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]
    model: ModelRef | None = Field(default=None, description="the model being served (null before it loads)")


class Moderator(BaseModel):
    """The moderator a token belongs to."""

    name: str
    created_at: str = Field(description="ISO 8601")


MAX_REVIEW_BOXES = 50
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ReviewBox(BaseModel):
    """One camera a moderator boxed (or kept from the model), in pixels of the upright original photo."""

    box: list[Coordinate] = Field(
        min_length=4,
        max_length=4,
        description="[x0, y0, x1, y1] with x0 < x1 and y0 < y1, inside the photo's width and height",
        examples=[[2610, 322, 2790, 488]],
    )
    label: str = Field(
        max_length=64, description="a class of the loaded model", examples=["huawei_ipc6625_z30"]
    )

    @model_validator(mode="after")
    def _ordered(self) -> ReviewBox:
        x0, y0, x1, y1 = self.box
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"box {self.box}: need [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        return self


class ReviewEntry(BaseModel):
    """One review in a submission's audit trail."""

    revision: int
    moderator: str
    created_at: str
    verdict: Literal["confirm", "correct", "reject"]
    label: str | None
    note: str
    model_label: str
    model_confidence: float
    model_version: str | None = Field(
        default=None, description="the model whose verdict the moderator saw (null: an older review)"
    )
    boxes: list[ReviewBox] | None = Field(
        None, description="the boxes this review verified (null: none, e.g. a reject or an older review)"
    )


class SubmissionLocation(BaseModel):
    lat: float
    lon: float
    source: str | None = Field(examples=["form"])


class StoredResult(BaseModel):
    """The classification result kept with a submission; ``location`` is the one the moderators see."""

    model_config = ConfigDict(extra="allow")

    label: str
    confidence: float = Field(ge=0, le=1)
    decision: Literal["flag", "review", "reject"]
    probabilities: list[Score]
    cameras: list[CameraResult] = Field(default_factory=list)
    location: SubmissionLocation | None = None


class Claim(BaseModel):
    """A moderator's lease on a queue item: others get 409 until it runs out or the item is reviewed."""

    moderator: str
    until: str = Field(description="UTC time the claim runs out unless renewed")


class SubmissionView(BaseModel):
    """A submission; ``reviews`` (the audit trail) and ``duplicates`` only in the single-item view."""

    id: str
    created_at: str
    updated_at: str
    status: Literal["pending", "awaiting_second", "verified", "rejected"] = Field(
        description="awaiting_second: approved once with four-eyes publication on, not yet public"
    )
    revision: int = Field(ge=0, description="send it back with a review (optimistic concurrency)")
    label: str = Field(description="the moderators' label when reviewed, else the model's")
    final_label: str | None
    result: StoredResult
    width: int = Field(description="the upright original photo's width in pixels, which every box uses")
    height: int = Field(description="its height; the photo at photo_url may be smaller (longer side <= 4096)")
    camera_count: int = Field(
        ge=0, description="cameras in the photo: the verified boxes once a review set them, else the model's"
    )
    boxes: list[ReviewBox] | None = Field(
        description="the verified boxes (the latest review's); null until a confirm or correct set them"
    )
    source: str
    note: str
    duplicate_of: str | None
    photo_url: str
    heatmap_url: str
    reviews: list[ReviewEntry] | None = None
    duplicates: list[str] | None = None
    provenance: dict[str, str | None] | None = Field(
        default=None, description="where a mailed or posted photo came from (post link and time, mail date)"
    )
    claim: Claim | None = Field(
        default=None, description="who is reviewing it now (absent when nobody holds a claim)"
    )


class ClaimHeld(BaseModel):
    """The claim just taken or renewed."""

    id: str
    claimed_by: str
    claimed_until: str


class SubmissionPage(BaseModel):
    items: list[SubmissionView]
    total: int = Field(ge=0, description="every submission matching the filters")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        default=None,
        description="send as 'cursor' for the next page (null: this is the last); unlike an offset it "
        "never skips items that others review meanwhile",
    )
    counts: dict[str, int] = Field(description="submissions per status")


class SubmissionCreated(BaseModel):
    """The stored submission's id and the model's verdict on the photo."""

    id: str
    status: Literal["pending"]
    result: ClassificationResult
    duplicate_of: str | None = Field(description="the earlier submission this photo repeats, if any")


class StaleRevision(ErrorResponse):
    """409: someone reviewed the submission since; ``current`` is how it is now."""

    current: SubmissionView


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[lon, lat]")


class CameraProperties(BaseModel):
    id: str
    model: str = Field(examples=["Huawei IPC6625-Z30"])
    label: str
    form_factor: str
    first_seen: str
    last_seen: str
    photo_count: int = Field(ge=1)
    source: str


class CameraFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: CameraProperties


class CameraMap(BaseModel):
    """GeoJSON (RFC 7946) FeatureCollection: one Point per verified target camera."""

    type: Literal["FeatureCollection"]
    features: list[CameraFeature]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place, for ``responses=`` content entries.

    FastAPI files a ``"model"`` of ``responses=`` under the route's own media type; a body of
    another type (the JSON errors of the GeoJSON route) needs the schema spelled out instead.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def body_response(media_type: str, description: str) -> dict[str, Any]:
    """A ``responses=`` entry for a success body that is not JSON (CSV, zip, PNG)."""
    binary = {"type": "string"} if media_type.startswith("text/") else {"type": "string", "format": "binary"}
    return {"description": description, "content": {media_type: {"schema": binary}}}


SUPPORTED_PHOTOS = "JPEG, PNG, WebP, HEIC, BMP, GIF, TIFF"
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
    503: "overloaded, starting, timed out (see Retry-After), or the store is not open",
}


def error_responses(*statuses: int, spelled_out: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries (the error JSON shape) for the given statuses.

    ``spelled_out`` writes the schema under ``application/json`` in place, for a route whose own
    media type is not JSON (FastAPI files a ``"model"`` under the route's media type).
    """
    if spelled_out:
        content = {"application/json": {"schema": inline_schema(ErrorResponse)}}
        return {status: {"description": ERROR_TEXTS[status], "content": content} for status in statuses}
    return {status: {"model": ErrorResponse, "description": ERROR_TEXTS[status]} for status in statuses}


def image_form_body(*, many: bool, **fields: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that parses its multipart body itself (FastAPI cannot infer it).

    The form has a required ``image`` field (one photo, or ``many`` as an array) plus ``fields``
    (name -> JSON schema).
    """
    photo = {"type": "string", "format": "binary"}
    sniffed = f"{SUPPORTED_PHOTOS}; the type is sniffed from the bytes, the file name is ignored"
    image = (
        {"type": "array", "items": photo, "minItems": 1, "description": f"one or more photos ({sniffed})"}
        if many
        else {**photo, "description": f"one photo ({sniffed})"}
    )
    schema = {"type": "object", "required": ["image"], "properties": {"image": image, **fields}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


# Every error status the API uses, for routes that may answer any of them.
ERROR_RESPONSES = error_responses(*ERROR_TEXTS)
