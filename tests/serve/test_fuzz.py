"""Schemathesis against the app's own OpenAPI document: no 5xx, responses conform to the schema.

Every route is covered, the moderators' ones too: once without a token (documented 401s) and once
with a valid moderator token, so generated requests reach the handlers. The store holds one
submission and one moderator. Bounded for 2 shared cores: a few examples per operation, no deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from data.labels import load_labels  # noqa: E402
from serve.app import create_app  # noqa: E402
from serve.store import open_store  # noqa: E402
from tests.serve.apptools import settings_for  # noqa: E402
from tests.serve.moderation_fixtures import photo_bytes  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The document only: create_app loads nothing until its lifespan runs.
schema = schemathesis.openapi.from_dict(
    create_app(settings_for(Path("unused.onnx"), Path("unused"))).openapi()
)


@pytest.fixture(scope="module")
def live_app(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = settings_for(tiny_model.onnx, tmp_path_factory.mktemp("var"), submissions_per_minute=10_000)
    app = create_app(settings)
    with TestClient(app) as client:  # runs the lifespan: model, store and pool live for the whole module
        photo = {"image": ("p.jpg", photo_bytes(1), "image/jpeg")}
        sent = client.post("/v1/submissions", files=photo, data={"lat": "44.81", "lon": "20.46"})
        assert sent.status_code == 201, sent.text
        yield app


@dataclass(frozen=True)
class Moderation:
    headers: dict[str, str]  # with a valid moderator token
    submission_id: str  # of the one stored submission


@pytest.fixture(scope="module")
def moderation(live_app: FastAPI) -> Moderation:
    """A moderator's token and the stored submission's id.

    Through a store of its own: schemathesis runs (and ends) the app's lifespan around each test,
    so ``app.state.store`` is not there between tests.
    """
    store = open_store(live_app.state.settings, load_labels())  # the tiny model has the default labels
    try:
        token = store.add_moderator("fuzz")
        (item,), _ = store.list_submissions(limit=1)
    finally:
        store.close()
    return Moderation({"Authorization": f"Bearer {token}"}, item["id"])


BOUNDED = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@BOUNDED
def test_no_server_errors(case: Any, live_app: FastAPI) -> None:
    """Every operation, whatever it is sent: never a 5xx."""
    case.call_and_validate(app=live_app, checks=[not_a_server_error])


@schema.parametrize()
@BOUNDED
def test_openapi_conformance(case: Any, live_app: FastAPI, moderation: Moderation) -> None:
    """Statuses, content types and bodies are the ones the OpenAPI document promises, with a token or not.

    A moderator's request is sent again for the stored submission, so its photo, heatmap and
    reviews are answered too, not only 404s for made-up ids.
    """
    case.call_and_validate(app=live_app, checks=CHECKS)
    if not case.operation.definition.raw.get("security"):
        return
    case.call_and_validate(app=live_app, checks=CHECKS, headers=moderation.headers)
    if "submission_id" in (case.path_parameters or {}):
        case.path_parameters["submission_id"] = moderation.submission_id
        case.call_and_validate(app=live_app, checks=CHECKS, headers=moderation.headers)
