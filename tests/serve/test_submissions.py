"""HTTP API of submissions, reviews, moderator tokens and exports, on the tiny exported model."""
# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from data.boxes import record_boxes
from data.labels import load_labels
from data.manifest import read_manifest, validate_manifest
from serve.schemas import CameraMap
from tests.serve.apptools import GatedEngine, wait_for
from tests.serve.moderation_fixtures import (  # noqa: F401 - fixtures
    database_url,
    fake_camera,
    new_submission,
    photo_bytes,
)


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
    assert rows[0] == "path,label,group,source,license,lat,lon,boxes" and len(rows) == 5
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
    # the mean of the two photos (20.460025, 44.810025), rounded to 4 decimals (~10 m)
    assert first["geometry"] == {"type": "Point", "coordinates": [20.46, 44.81]}
    # no stored photo is named: only the public, blurred one of each camera (#16)
    assert all(f["properties"].pop("photo_url") == f"/v1/cameras/{f['id']}/photo.jpg" for f in features)
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


MODEL_CAMERAS = [fake_camera([10, 5, 30, 20]), fake_camera([100, 10, 150, 80], "huawei_ipc6225_vrz_es", 0.7)]


def _with_cameras(client: TestClient, seed: int) -> str:
    """A pending submission of a 160x90 photo in which the model found two cameras."""
    new = new_submission(seed, data=photo_bytes(seed, size=(160, 90)), cameras=MODEL_CAMERAS)
    return str(client.app.state.store.add_submission(new)["id"])  # type: ignore[attr-defined]


def _review(client: TestClient, token: str, sid: str, **body: Any) -> Any:
    return client.post(f"/v1/submissions/{sid}/review", json=body, headers=auth(token))


def test_review_with_boxes_is_stored_and_kept_in_the_audit_trail(client: TestClient, token: str) -> None:
    sid = _with_cameras(client, 60)
    (item,) = client.get("/v1/submissions", headers=auth(token)).json()["items"]
    assert item["camera_count"] == 2 and len(item["result"]["cameras"]) == 2
    assert (item["width"], item["height"], item["boxes"]) == (160, 90, None)

    confirmed = _review(client, token, sid, verdict="confirm", revision=0)  # no boxes: the model's stay
    assert confirmed.status_code == 200, confirmed.text
    model_boxes = [{"box": c["box"], "label": c["label"]} for c in MODEL_CAMERAS]
    assert confirmed.json()["boxes"] == model_boxes
    drawn = [
        {"box": [12, 6, 31, 22], "label": "huawei_ipc6625_z30"},
        {"box": [100, 10, 150, 80], "label": "other_camera"},
        {"box": [50.5, 40, 60, 90], "label": "other_camera"},  # touching the bottom edge is inside
    ]
    corrected = _review(client, token, sid, verdict="correct", label="other_camera", revision=1, boxes=drawn)
    assert corrected.status_code == 200, corrected.text

    detail = client.get(f"/v1/submissions/{sid}", headers=auth(token)).json()
    assert detail["boxes"] == drawn and detail["camera_count"] == 3
    assert [r["boxes"] for r in detail["reviews"]] == [model_boxes, drawn]  # the older one untouched
    (item,) = client.get("/v1/submissions?status=verified", headers=auth(token)).json()["items"]
    assert item["camera_count"] == 3


GOOD_BOX = {"box": [10, 5, 30, 20], "label": "huawei_ipc6625_z30"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"boxes": [{"box": [10, 5, 30], "label": "other_camera"}]}, "boxes.0.box"),
        ({"boxes": [{"box": [30, 5, 10, 20], "label": "other_camera"}]}, "x0 < x1"),
        ({"boxes": [{"box": [10, 20, 30, 20], "label": "other_camera"}]}, "y0 < y1"),
        ({"boxes": [{"box": [10, 5, "30", 20], "label": "other_camera"}]}, "valid number"),
        ('{"boxes": [{"box": [10, 5, NaN, 20], "label": "other_camera"}]}', "finite"),  # Python's JSON
        ({"boxes": [{"box": [10, 5, 30, 20]}]}, "label"),
        ({"boxes": [GOOD_BOX, {"box": [100, 10, 161, 80], "label": "other_camera"}]}, "160x90"),
        ({"boxes": [{"box": [10, -0.5, 30, 20], "label": "other_camera"}]}, "outside"),
        ({"boxes": [{"box": [10, 5, 30, 20], "label": "a_new_thing"}]}, "unknown label"),
        ({"boxes": [GOOD_BOX] * 51}, "at most 50"),
        ({"verdict": "reject", "boxes": [GOOD_BOX]}, "rejected photo keeps no boxes"),
    ],
)
def test_bad_boxes_answer_422_and_change_nothing(
    client: TestClient, token: str, body: dict[str, Any] | str, says: str
) -> None:
    sid = _with_cameras(client, 61)
    if isinstance(body, str):  # not JSON any client library writes, but json.loads reads it
        raw = '{"verdict": "confirm", "revision": 0, ' + body[1:]
        headers = {**auth(token), "content-type": "application/json"}
        answer = client.post(f"/v1/submissions/{sid}/review", content=raw, headers=headers)
    else:
        answer = _review(client, token, sid, **{"verdict": "confirm", "revision": 0, **body})
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["error"]["message"]
    detail = client.get(f"/v1/submissions/{sid}", headers=auth(token)).json()
    assert (detail["status"], detail["revision"], detail["reviews"], detail["boxes"]) == (
        "pending",
        0,
        [],
        None,
    )
    assert client.get("/v1/submissions", headers=auth(token)).json()["counts"]["verified"] == 0


def test_training_export_has_the_boxes_in_the_exported_photos_pixels(
    client: TestClient, token: str, tmp_path: Path
) -> None:
    wide = photo_bytes(70, size=(4200, 630))  # stored (and exported) downscaled to 4096 px wide
    sid = submit(client, wide, lat="44.81", lon="20.46").json()["id"]
    boxes = [
        {"box": [2100, 63, 2520, 315], "label": "huawei_ipc6625_z30"},
        {"box": [0, 0, 420, 630], "label": "other_camera"},
    ]
    reviewed = _review(
        client, token, sid, verdict="correct", label="huawei_ipc6625_z30", revision=0, boxes=boxes
    )
    assert reviewed.status_code == 200, reviewed.text
    _verify(client, token, photo_bytes(71), "no_camera")  # reviewed without boxes: an empty cell

    text = client.get("/v1/export/training.csv", headers=auth(token)).text
    cells = {row["source"]: row["boxes"] for row in csv.DictReader(io.StringIO(text))}
    assert len(cells) == 2 and cells.pop(f"camid-submission/{sid}") and list(cells.values()) == [""]

    archive = client.get("/v1/export/training.zip", headers=auth(token))
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(out)
    assert validate_manifest(out / "manifest.csv", load_labels()) == []
    (record,) = [r for r in read_manifest(out / "manifest.csv").records if r.source.endswith(sid)]
    with Image.open(out / record.path) as photo:
        width, height = photo.size
    assert (width, height) == (4096, 614)
    sx, sy = width / 4200, height / 630
    exported = record_boxes(record)
    assert [b.label for b in exported] == ["huawei_ipc6625_z30", "other_camera"]
    expected = [(2100 * sx, 63 * sy, 2520 * sx, 315 * sy), (0, 0, 420 * sx, height)]
    for box, want in zip(exported, expected, strict=True):
        assert box.box == pytest.approx(want, abs=0.06)  # format_boxes keeps 0.1 px
