"""Schemathesis against the app's own OpenAPI document: no 5xx, responses conform to the schema.

Bounded for 2 shared cores: a few examples per operation, no deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
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

from serve.app import create_app  # noqa: E402
from tests.serve.apptools import settings_for  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The document only: create_app loads nothing until its lifespan runs.
schema = schemathesis.openapi.from_dict(
    create_app(settings_for(Path("unused.onnx"), Path("unused"))).openapi()
)


@pytest.fixture(scope="module")
def live_app(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = create_app(settings_for(tiny_model.onnx, tmp_path_factory.mktemp("var")))
    with TestClient(app):  # runs the lifespan: model, store and pool live for the whole module
        yield app


BOUNDED = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@BOUNDED
def test_no_server_errors(case: Any, live_app: FastAPI) -> None:
    """Every operation, whatever it is sent: never a 5xx."""
    case.call_and_validate(app=live_app, checks=[not_a_server_error])


# TODO(H6/lead): the moderation routes (tag "moderation") do not yet document their 401 answers
# and their text/csv and application/geo+json bodies; include them here once they do.
@schema.exclude(tag="moderation").parametrize()
@BOUNDED
def test_openapi_conformance(case: Any, live_app: FastAPI) -> None:
    """Statuses, content types and bodies are the ones the OpenAPI document promises."""
    case.call_and_validate(app=live_app, checks=CHECKS)
