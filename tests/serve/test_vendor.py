"""Vendored browser libraries are served by the app itself (no CDN), with licence and version."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.routes.vendor import VENDOR
from tests.serve.apptools import settings_for


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    # no lifespan: these routes need neither the model nor the store
    return TestClient(create_app(settings_for(tmp_path / "no-model.onnx", tmp_path / "var")))


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("leaflet/leaflet.js", "text/javascript"),
        ("leaflet/leaflet.css", "text/css"),
        ("leaflet/images/marker-icon.png", "image/png"),
        ("leaflet.markercluster/leaflet.markercluster.js", "text/javascript"),
        ("leaflet.markercluster/MarkerCluster.Default.css", "text/css"),
    ],
)
def test_vendored_files_are_served(client: TestClient, path: str, media: str) -> None:
    r = client.get(f"/static/vendor/{path}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    assert r.content == (VENDOR / path).read_bytes()


@pytest.mark.parametrize("lib", ["leaflet", "leaflet.markercluster"])
def test_each_library_carries_its_licence_and_version(lib: str) -> None:
    assert "Copyright" in (VENDOR / lib / "LICENSE").read_text()
    assert (VENDOR / lib / "VERSION").read_text().startswith(lib + " ")


@pytest.mark.parametrize(
    "path",
    [
        "leaflet/LICENSE",  # not a served type
        "leaflet/../../app.py",
        "leaflet/%2e%2e/%2e%2e/routes/vendor.py",
        "nope/leaflet.js",
        "leaflet/missing.js",
    ],
)
def test_nothing_else_is_reachable(client: TestClient, path: str) -> None:
    r = client.get(f"/static/vendor/{path}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
