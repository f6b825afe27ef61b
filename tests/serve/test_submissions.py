"""HTTP API of submissions, reviews, moderator tokens and exports, on the tiny exported model."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from data.labels import load_labels
from data.manifest import read_manifest, validate_manifest
from serve.schemas import CameraMap
from tests.serve.apptools import GatedEngine, wait_for
from tests.serve.moderation_fixtures import database_url, photo_bytes  # noqa: F401 - fixtures


def moderation_app(model_path: Path, data_dir: Path, database_url: str | None, **overrides: Any) -> Any:
    """create_app with the moderation routers (included here until app.py includes them itself)."""
    from serve.app import create_app
    from serve.routes import moderation, submissions
    from serve.settings import Settings

    settings = Settings(model_path=model_path, data_dir=data_dir, database_url=database_url, **overrides)
    app = create_app(settings)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/v1/submissions" not in paths:
        app.include_router(submissions.router)
    if "/v1/export/training.csv" not in paths:
        app.include_router(moderation.router)
    return app


@pytest.fixture
def client(tiny_model: Any, tmp_path: Path, database_url: str | None) -> Iterator[TestClient]:  # noqa: F811
    app = moderation_app(tiny_model.onnx, tmp_path / "var", database_url, submissions_per_minute=1000)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def token(client: TestClient) -> str:
    return str(client.app.state.store.add_moderator("ana"))  # type: ignore[attr-defined]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit(client: TestClient, data: bytes, **fields: str) -> Any:
    return client.post("/v1/submissions", files={"image": ("p.jpg", data, "image/jpeg")}, data=fields)


def test_submit_classifies_stores_and_links_duplicates(client: TestClient, token: str) -> None:
    data = photo_bytes(1, exif_gps=True)
    first = submit(client, data, source="test", note="corner of Knez Mihailova")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "pending" and body["duplicate_of"] is None
    assert body["result"]["location"]["source"] == "exif"
    assert abs(body["result"]["location"]["lat"] - 44.81) < 0.001
    again = submit(client, data, lat="44.8", lon="20.4")
    assert again.json()["duplicate_of"] == body["id"]
    assert again.json()["result"]["location"] == {"lat": 44.8, "lon": 20.4, "source": "form"}
    detail = client.get(f"/v1/submissions/{body['id']}", headers=auth(token)).json()
    assert detail["duplicates"] == [again.json()["id"]] and detail["note"] == "corner of Knez Mihailova"
    photo = client.get(detail["photo_url"], headers=auth(token))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert b"SecretPhone" not in photo.content and b"GPS" not in photo.content


@pytest.mark.parametrize(
    ("data", "fields", "status"),
    [
        (b"not an image at all", {}, 415),
        (b"\xff\xd8\xff\xe0" + b"\0" * 50, {}, 400),
        (None, {"lat": "44.8"}, 422),
        (None, {"lat": "91", "lon": "20"}, 422),
    ],
)
def test_bad_submissions_store_nothing(
    client: TestClient, token: str, data: bytes | None, fields: dict[str, str], status: int
) -> None:
    answer = submit(client, data or photo_bytes(2), **fields)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    assert client.get("/v1/submissions", headers=auth(token)).json()["total"] == 0
    photos = client.app.state.store.photos.root  # type: ignore[attr-defined]
    assert not [p for p in photos.rglob("*") if p.is_file()]


def test_tokens_are_required_and_revocable(client: TestClient, token: str) -> None:
    assert client.get("/v1/submissions").status_code == 401
    assert client.get("/v1/submissions", headers=auth("nope")).status_code == 401
    assert client.get("/v1/export/training.csv").status_code == 401
    assert client.get("/v1/submissions", headers=auth(token)).status_code == 200
    client.app.state.store.revoke_moderator("ana")  # type: ignore[attr-defined]
    denied = client.get("/v1/submissions", headers=auth(token))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "revoked"


def test_review_and_stale_revision_conflict(client: TestClient, token: str) -> None:
    sid = submit(client, photo_bytes(3)).json()["id"]
    review = {"verdict": "correct", "label": "huawei_ipc6225_vrz_es", "note": "bullet", "revision": 0}
    done = client.post(f"/v1/submissions/{sid}/review", json=review, headers=auth(token))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "verified" and done.json()["revision"] == 1
    stale = client.post(
        f"/v1/submissions/{sid}/review", json={**review, "verdict": "reject"}, headers=auth(token)
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_revision" and stale.json()["current"]["revision"] == 1
    bad = client.post(
        f"/v1/submissions/{sid}/review", json={"verdict": "correct", "revision": 1}, headers=auth(token)
    )
    assert bad.status_code == 422
    missing = client.post("/v1/submissions/nope/review", json=review, headers=auth(token))
    assert missing.status_code == 404
    listed = client.get("/v1/submissions?status=verified", headers=auth(token)).json()
    assert [i["id"] for i in listed["items"]] == [sid] and listed["counts"]["verified"] == 1


def test_heatmap_is_a_png(client: TestClient, token: str) -> None:
    sid = submit(client, photo_bytes(4)).json()["id"]
    png = client.get(f"/v1/submissions/{sid}/heatmap.png", headers=auth(token))
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_rate_limit_answers_429_with_retry_after(tiny_model: Any, tmp_path: Path) -> None:
    app = moderation_app(tiny_model.onnx, tmp_path / "var", None, submissions_per_minute=2)
    with TestClient(app) as c:
        codes = [submit(c, photo_bytes(10 + i)).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        limited = submit(c, photo_bytes(20))
        assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["error"]["code"] == "rate_limited"


def test_saturated_queue_refuses_submissions_before_reading_them(tiny_model: Any, tmp_path: Path) -> None:
    app = moderation_app(
        tiny_model.onnx, tmp_path / "var", None, inference_threads=1, queue_size=1, retry_after_s=3
    )
    with TestClient(app) as c:
        gated = GatedEngine(app.state.engine)
        app.state.engine = gated
        statuses: list[int] = []
        held = [
            threading.Thread(
                target=lambda seed=seed: statuses.append(submit(c, photo_bytes(seed)).status_code)
            )
            for seed in (50, 51)
        ]
        for t in held:
            t.start()
        wait_for(lambda: app.state.pool.pending == 2)  # one running, one waiting: the queue is full
        refused = submit(c, photo_bytes(52), lat="44.8", lon="20.4")
        # Not even parsed: a body that is not multipart would be a 415 once read.
        unread = c.post("/v1/submissions", content=b"x" * 1000, headers={"content-type": "text/plain"})
        gated.gate.set()
        for t in held:
            t.join(10)
        assert sorted(statuses) == [201, 201]
        store = app.state.store
        assert store.list_submissions()[1] == 2
        assert len(list(store.photos.root.rglob("*.jpg"))) == 2
    for r in (refused, unread):
        assert r.status_code == 503 and r.headers["retry-after"] == "3", r.text
        assert r.json()["error"]["code"] == "overloaded"


def _verify(client: TestClient, token: str, data: bytes, label: str, **fields: str) -> str:
    sid = str(submit(client, data, **fields).json()["id"])
    review = {"verdict": "correct", "label": label, "revision": 0}
    assert client.post(f"/v1/submissions/{sid}/review", json=review, headers=auth(token)).status_code == 200
    return sid


def test_exports(client: TestClient, token: str, tmp_path: Path) -> None:
    a = _verify(client, token, photo_bytes(30), "huawei_ipc6625_z30", lat="44.81", lon="20.46")
    _verify(client, token, photo_bytes(31), "huawei_ipc6625_z30", lat="44.81005", lon="20.46005")
    _verify(client, token, photo_bytes(32), "huawei_ipc6225_vrz_es", lat="44.82", lon="20.47")
    _verify(client, token, photo_bytes(33), "no_camera")
    submit(client, photo_bytes(34), lat="44.83", lon="20.48")  # pending: exported nowhere

    csv_text = client.get("/v1/export/training.csv", headers=auth(token)).text
    rows = csv_text.strip().splitlines()
    assert rows[0] == "path,label,group,source,license,lat,lon" and len(rows) == 5
    assert rows[1].split(",")[2] == rows[2].split(",")[2]  # 6 m apart: one location group

    archive = client.get("/v1/export/training.zip", headers=auth(token))
    assert archive.status_code == 200
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(out)
    assert validate_manifest(out / "manifest.csv", load_labels()) == []
    assert len(read_manifest(out / "manifest.csv").records) == 4

    geo = client.get("/v1/export/cameras.geojson")  # public
    assert geo.status_code == 200
    assert geo.headers["content-type"] == "application/geo+json"
    CameraMap.model_validate_json(geo.content)  # the shape the OpenAPI document promises
    features = json.loads(geo.content)["features"]
    assert sorted(f["properties"]["photo_count"] for f in features) == [1, 2]
    first = next(f for f in features if f["properties"]["photo_count"] == 2)
    assert first["id"] == f"cam-{a}" and first["properties"]["model"] == "Huawei IPC6625-Z30"
    assert (
        first["geometry"]["type"] == "Point" and abs(first["geometry"]["coordinates"][0] - 20.460025) < 1e-6
    )
    assert "photo" not in json.dumps(features).replace("photo_count", "")
    table = client.get("/v1/export/cameras.csv").text.splitlines()
    assert table[0].startswith("id,lat,lon,model,label") and len(table) == 3


def test_export_training_cli_writes_a_trainable_manifest(
    client: TestClient, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serve import moderators

    _verify(client, token, photo_bytes(40), "other_camera", lat="44.80", lon="20.45")
    _verify(client, token, photo_bytes(41), "no_camera")
    settings = client.app.state.settings  # type: ignore[attr-defined]
    monkeypatch.setenv("CAMID_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CAMID_DATABASE_URL", settings.database_url)
    assert moderators.main(["export-training", str(tmp_path / "export")]) == 0
    manifest = tmp_path / "export" / "manifest.csv"
    assert validate_manifest(manifest, load_labels()) == []
    assert {r.label for r in read_manifest(manifest).records} == {"other_camera", "no_camera"}
