"""``POST /v1/classify``: classify one or more photos, store nothing."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from serve.classify import classify_uploads
from serve.deps import (
    EngineDep,
    ImageLimitsDep,
    MetricsDep,
    PoolDep,
    SettingsDep,
    UploadGateDep,
    UploadLimitsDep,
)
from serve.errors import ApiError
from serve.observability import annotate
from serve.ratelimit import client_address, enforce_rate
from serve.schemas import ClassifyResponse, error_responses, image_form_body
from serve.uploads import read_multipart

router = APIRouter(tags=["classify"])


def _rate_limit(request: Request, settings: SettingsDep) -> None:
    """429 with Retry-After when this client asked for too many classifications this minute."""
    enforce_rate(request, "classify", settings.classify_per_minute, "classification requests")


@router.post(
    "/v1/classify",
    dependencies=[Depends(_rate_limit)],
    response_model=ClassifyResponse,
    response_model_exclude_unset=True,  # heatmap_png only when asked for
    response_description="one result per photo, in order",
    responses=error_responses(400, 408, 413, 415, 422, 429, 503),
    openapi_extra=image_form_body(many=True),
)
async def classify(
    request: Request,
    engine: EngineDep,
    pool: PoolDep,
    metrics: MetricsDep,
    image_limits: ImageLimitsDep,
    upload_limits: UploadLimitsDep,
    uploads: UploadGateDep,
    heatmap: bool = Query(False, description="add a class-activation heatmap to each result"),
) -> ClassifyResponse:
    """Classify the photos in the multipart field ``image``; nothing is stored, on disk or elsewhere.

    The request fails as a whole (4xx naming ``image[i]``) when any photo is unusable.
    """
    pool.check_room()  # a full queue refuses at once, before the upload is read
    with uploads.enter(client_address(request)) as allowance:
        form = await read_multipart(request, limits=upload_limits, allowance=allowance)
        photos = form.files_in("image")
        if not photos:
            raise ApiError(422, "missing_field", "no photo sent; send it as multipart field 'image'")
        annotate(request.scope, images=len(photos), image_bytes=[len(p) for p in photos])
        # Only a received upload takes an inference place: slow senders hold none.
        results = await pool.run(classify_uploads, engine, photos, limits=image_limits, heatmap=heatmap)
    metrics.observe_results(results)
    annotate(request.scope, labels=[r["label"] for r in results], decisions=[r["decision"] for r in results])
    return ClassifyResponse.model_validate({"results": results})
