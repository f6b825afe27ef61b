"""The exports over HTTP: the public camera map reveals no photographer (rounded locations, dates
only, stable ids) and the training zip is streamed as it is built; deletion keeps them working."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from data.labels import load_labels
from data.manifest import read_manifest, validate_manifest
from serve.app import create_app
from serve.privacy import PrivacyError
from tests.serve.apptools import settings_for
from tests.serve.moderation_fixtures import database_url, photo_bytes  # noqa: F401 - fixtures


def _client(tiny_model: Any, data_dir: Path, database_url: str | None, **overrides: Any) -> TestClient:
    settings = settings_for(
        tiny_model.onnx, data_dir, database_url=database_url, submissions_per_minute=1000, **overrides
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tiny_model: Any, tmp_path: Path, database_url: str | None) -> Iterator[TestClient]:
    with _client(tiny_model, tmp_path / "var", database_url) as c:
        yield c


@pytest.fixture
def token(client: TestClient) -> str:
    return str(client.app.state.store.add_moderator("ana"))  # type: ignore[attr-defined]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit(client: TestClient, seed: int, **fields: str) -> str:
    r = client.post(
        "/v1/submissions", files={"image": ("p.jpg", photo_bytes(seed), "image/jpeg")}, data=fields
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def review(client: TestClient, token: str, sid: str, verdict: str, revision: int = 0, **body: Any) -> None:
    r = client.post(
        f"/v1/submissions/{sid}/review",
        json={"verdict": verdict, "revision": revision, **body},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text


def verify(
    client: TestClient, token: str, seed: int, label: str = "huawei_ipc6625_z30", **fields: str
) -> str:
    sid = submit(client, seed, **fields)
    review(client, token, sid, "correct", label=label)
    return sid


def features(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/v1/export/cameras.geojson")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = json.loads(r.content)["features"]
    return found


def test_public_cameras_show_a_rounded_location_and_dates_only(client: TestClient, token: str) -> None:
    verify(client, token, 1, lat="44.8123456", lon="20.4612345")
    (camera,) = features(client)
    assert camera["geometry"]["coordinates"] == [20.4612, 44.8123]  # ~10 m, not the photographer's GPS
    props = camera["properties"]
    assert len(props["first_seen"]) == 10 and props["first_seen"] == props["last_seen"]  # 2026-12-02
    assert "T" not in props["first_seen"]
    (row,) = csv.DictReader(io.StringIO(client.get("/v1/export/cameras.csv").text))
    assert (row["lat"], row["lon"], row["first_seen"]) == ("44.8123", "20.4612", props["first_seen"])
    # the moderators' training manifest keeps the full location
    manifest = client.get("/v1/export/training.csv", headers=auth(token)).text
    assert "44.8123456" in manifest


def test_the_public_precision_is_configurable(tiny_model: Any, tmp_path: Path) -> None:
    with _client(tiny_model, tmp_path / "var", None, public_location_decimals=2) as client:
        token = client.app.state.store.add_moderator("ana")  # type: ignore[attr-defined]
        verify(client, token, 2, lat="44.8123456", lon="20.4612345")
        assert features(client)[0]["geometry"]["coordinates"] == [20.46, 44.81]


def test_a_camera_id_survives_the_rejection_and_deletion_of_its_first_photo(
    client: TestClient, token: str
) -> None:
    first = verify(client, token, 3, lat="44.81", lon="20.46")
    second = verify(client, token, 4, lat="44.81005", lon="20.46005")
    (camera,) = features(client)
    assert camera["id"] == f"cam-{first}" and camera["properties"]["photo_count"] == 2

    review(client, token, first, "reject", revision=1)
    (camera,) = features(client)
    assert camera["id"] == f"cam-{first}" and camera["properties"]["photo_count"] == 1

    review(client, token, first, "confirm", revision=2)
    gone = client.request(
        "DELETE", f"/v1/submissions/{first}", json={"reason": "erasure"}, headers=auth(token)
    )
    assert gone.status_code == 200, gone.text
    (camera,) = features(client)
    assert camera["id"] == f"cam-{first}" and camera["properties"]["photo_count"] == 1
    assert client.get(f"/v1/submissions/{second}", headers=auth(token)).status_code == 200


def test_delete_over_http_removes_the_photo_and_is_audited(client: TestClient, token: str) -> None:
    sid = verify(client, token, 5, lat="44.81", lon="20.46", note="call me at 064 123")
    keep = verify(client, token, 6, label="no_camera")
    photo = client.app.state.store.photo_path(sid)  # type: ignore[attr-defined]
    assert (
        client.get("/v1/export/training.zip", headers=auth(token)).status_code == 200
    )  # caches blurred copies
    blurred = client.app.state.store.photos.copies(photo.relative_to(photo.parents[1]).as_posix())  # type: ignore[attr-defined]
    assert len(blurred) == 2  # the photo and its blurred copy

    body = {"reason": "photo of a person"}
    assert client.request("DELETE", f"/v1/submissions/{sid}", json=body).status_code == 401
    assert client.request("DELETE", "/v1/submissions/nope", json=body, headers=auth(token)).status_code == 404
    empty = client.request("DELETE", f"/v1/submissions/{sid}", json={"reason": " "}, headers=auth(token))
    assert empty.status_code == 422 and empty.json()["error"]["code"]
    r = client.request("DELETE", f"/v1/submissions/{sid}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["deleted_by"] == "ana" and r.json()["photo_removed"] is True

    assert not any(p.exists() for p in blurred)
    assert client.get(f"/v1/submissions/{sid}", headers=auth(token)).status_code == 404
    assert client.get(f"/v1/submissions/{sid}/photo", headers=auth(token)).status_code == 404
    listed = client.get("/v1/submissions", headers=auth(token)).json()
    assert [i["id"] for i in listed["items"]] == [keep]
    (row,) = client.get("/v1/deletions", headers=auth(token)).json()["items"]
    assert row["submission_id"] == sid and row["reason"] == "photo of a person"
    # the audit row keeps no personal data: no location field and not the note (ids, hash and time
    # may contain any digits, so the location is checked by the row's fields, not its text)
    kept = {"submission_id", "sha256", "deleted_at", "deleted_by", "reason", "status", "photo_removed"}
    assert set(row) == kept
    assert "064 123" not in json.dumps(row)
    assert features(client) == []
    archive = client.get("/v1/export/training.zip", headers=auth(token))
    assert archive.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == [
        "manifest.csv",
        f"photos/{_sha(client, keep)}.jpg",
    ]


def _sha(client: TestClient, sid: str) -> str:
    return str(client.app.state.store.get(sid)["result"]["image"]["sha256"])  # type: ignore[attr-defined]


def test_training_zip_is_streamed_with_its_photo_count(
    client: TestClient, token: str, tmp_path: Path
) -> None:
    for seed in range(10, 14):
        verify(client, token, seed, label="other_camera")
    chunks = []
    with client.stream("GET", "/v1/export/training.zip", headers=auth(token)) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert r.headers["x-camid-photo-count"] == "4"
        assert "content-length" not in r.headers  # sent as it is built, not after
        chunks = list(r.iter_bytes())
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(b"".join(chunks))).extractall(out)
    assert validate_manifest(out / "manifest.csv", load_labels()) == []
    assert len(read_manifest(out / "manifest.csv").records) == 4


def test_training_zip_without_a_face_detector_is_a_503_not_a_broken_download(
    client: TestClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    verify(client, token, 20, label="other_camera")

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise PrivacyError("no detector")

    monkeypatch.setattr("serve.exports.blur_sensitive", unavailable)
    r = client.get("/v1/export/training.zip", headers=auth(token))
    assert r.status_code == 503 and r.json()["error"]["code"] == "privacy_unavailable"
