"""``POST /v1/classify``: classify one or more photos, store nothing."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from serve.classify import classify_uploads
from serve.deps import EngineDep, ImageLimitsDep, MetricsDep, PoolDep, UploadLimitsDep
from serve.errors import ApiError
from serve.observability import annotate
from serve.schemas import ClassifyResponse, error_responses, image_form_body
from serve.uploads import read_multipart

router = APIRouter(tags=["classify"])


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    response_model_exclude_unset=True,  # heatmap_png only when asked for
    response_description="one result per photo, in order",
    responses=error_responses(400, 408, 413, 415, 422, 503),
    openapi_extra=image_form_body(many=True),
)
async def classify(
    request: Request,
    engine: EngineDep,
    pool: PoolDep,
    metrics: MetricsDep,
    image_limits: ImageLimitsDep,
    upload_limits: UploadLimitsDep,
    heatmap: bool = Query(False, description="add a class-activation heatmap to each result"),
) -> ClassifyResponse:
    """Classify the photos in the multipart field ``image``; nothing is stored, on disk or elsewhere.

    The request fails as a whole (4xx naming ``image[i]``) when any photo is unusable.
    """
    async with pool.admit() as ticket:  # before reading: bounds the uploads held in memory
        form = await read_multipart(request, limits=upload_limits)
        uploads = form.files_in("image")
        if not uploads:
            raise ApiError(422, "missing_field", "no photo sent; send it as multipart field 'image'")
        annotate(request.scope, images=len(uploads), image_bytes=[len(u) for u in uploads])
        results = await ticket.run(classify_uploads, engine, uploads, limits=image_limits, heatmap=heatmap)
    metrics.observe_results(results)
    annotate(request.scope, labels=[r["label"] for r in results], decisions=[r["decision"] for r in results])
    return ClassifyResponse.model_validate({"results": results})
