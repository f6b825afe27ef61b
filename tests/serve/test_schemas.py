"""Response models keep what clients get: extra result keys pass through, absent keys stay absent."""

from __future__ import annotations

from typing import Any

from serve.schemas import ClassifyResponse, ModelDescription, SubmissionPage


def _result(**extra: Any) -> dict[str, Any]:
    return {
        "label": "no_camera",
        "confidence": 0.9,
        "decision": "reject",
        "probabilities": [{"label": "no_camera", "score": 0.9}, {"label": "other_camera", "score": 0.1}],
        "model": {"name": "m", "version": "1"},
        "image": {"width": 4, "height": 3, "sha256": "0" * 64, "phash": "0" * 16},
        "location": None,
        **extra,
    }


def test_results_keep_keys_the_model_does_not_name() -> None:
    body = ClassifyResponse.model_validate({"results": [_result(path="a.jpg")]})
    (dumped,) = body.model_dump(mode="json", exclude_unset=True)["results"]
    assert dumped == _result(path="a.jpg")  # nothing lost, and no "heatmap_png": null added


def test_list_items_get_no_audit_trail_keys() -> None:
    item = {
        "id": "s1",
        "created_at": "t",
        "updated_at": "t",
        "status": "pending",
        "revision": 0,
        "label": "no_camera",
        "final_label": None,
        "result": {**_result(), "location": {"lat": 1.0, "lon": 2.0, "source": "form"}},
        "width": 4,
        "height": 3,
        "camera_count": 0,
        "boxes": None,
        "source": "",
        "note": "",
        "duplicate_of": None,
        "photo_url": "/p",
        "heatmap_url": "/h",
    }
    page = {"items": [item], "total": 1, "limit": 50, "offset": 0, "counts": {"pending": 1}}
    dumped = SubmissionPage.model_validate(page).model_dump(mode="json", exclude_unset=True)
    assert dumped == page


def test_model_description_classes_are_optional() -> None:
    doc = {
        "name": "m",
        "version": "1",
        "architecture": "a",
        "precision": "fp32",
        "labels": ["no_camera"],
        "targets": [],
        "input_size": [3, 64, 64],
        "resize": {},
        "normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]},
        "outputs": [],
        "thresholds": {"flag": 0.6, "reject": 0.2},
        "temperature": 1.0,
        "metrics": {},
        "trained_on": {},
    }
    assert ModelDescription.model_validate(doc).classes == []
