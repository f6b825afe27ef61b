"""The HTTP service end to end with a tiny exported model: results, system endpoints, metrics, docs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from tests.serve.apptools import files, settings_for
from tests.serve.hostile_corpus import BELGRADE, encode, gps_exif, jpeg, photo


@pytest.fixture(scope="module")
def client(tiny_model: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(tiny_model.onnx, tmp_path_factory.mktemp("var"))  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as c:
        yield c


def classify(client: TestClient, *images: bytes, **params: str) -> list[dict[str, object]]:
    r = client.post("/v1/classify", files=files(*images), params=params)
    assert r.status_code == 200, r.text
    results: list[dict[str, object]] = r.json()["results"]
    return results


def test_result_has_the_documented_structure(client: TestClient) -> None:
    (result,) = classify(client, jpeg((96, 72)))
    assert set(result) >= {"label", "confidence", "decision", "probabilities", "model", "image", "location"}
    probs = result["probabilities"]
    assert isinstance(probs, list)
    scores = [p["score"] for p in probs]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    assert {p["label"] for p in probs} == {
        "huawei_ipc6625_z30",
        "huawei_ipc6225_vrz_es",
        "other_camera",
        "no_camera",
    }
    assert result["label"] == probs[0]["label"] and result["confidence"] == probs[0]["score"]
    assert result["decision"] in {"flag", "review", "reject"}
    assert result["model"] == {"name": "camid-tiny", "version": "0.0.1"}
    image = result["image"]
    assert isinstance(image, dict)
    assert (image["width"], image["height"]) == (96, 72)
    assert len(image["sha256"]) == 64 and len(image["phash"]) == 16
    assert result["location"] is None
    assert "heatmap_png" not in result


def test_sha256_is_of_the_uploaded_bytes(client: TestClient) -> None:
    import hashlib

    data = jpeg(seed=5)
    (result,) = classify(client, data)
    assert result["image"]["sha256"] == hashlib.sha256(data).hexdigest()  # type: ignore[index]


def test_location_from_exif_gps_and_upright_size(client: TestClient) -> None:
    data = encode(photo((80, 40)), "JPEG", exif=gps_exif(orientation=6))  # rotated 90 degrees
    (result,) = classify(client, data)
    location = result["location"]
    assert isinstance(location, dict) and location["source"] == "exif"
    assert (location["lat"], location["lon"]) == pytest.approx(BELGRADE, abs=1e-3)
    assert (result["image"]["width"], result["image"]["height"]) == (40, 80)  # type: ignore[index]


def test_heatmap_on_request(client: TestClient) -> None:
    import base64

    (result,) = classify(client, jpeg(), heatmap="true")
    png = base64.b64decode(str(result["heatmap_png"]))
    assert png.startswith(b"\x89PNG")


def test_several_files_answer_in_order(client: TestClient) -> None:
    images = [jpeg(seed=i, size=(64 + 8 * i, 48)) for i in range(3)]
    results = classify(client, *images)
    assert [r["image"]["width"] for r in results] == [64, 72, 80]  # type: ignore[index]


def test_one_bad_file_fails_the_request_naming_its_index(client: TestClient) -> None:
    r = client.post("/v1/classify", files=files(jpeg(), b"not an image"))
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported"
    assert "image[1]" in r.json()["error"]["message"]


def test_model_endpoint(client: TestClient) -> None:
    r = client.get("/v1/model")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "camid-tiny" and body["version"] == "0.0.1"
    assert body["labels"][0] == "huawei_ipc6625_z30"
    assert body["targets"] == ["huawei_ipc6625_z30", "huawei_ipc6225_vrz_es"]
    assert body["classes"][0]["display_name"] == "Huawei IPC6625-Z30" and body["classes"][0]["target"]
    assert body["thresholds"] == {"flag": 0.6, "reject": 0.2}
    assert body["temperature"] == 1.5
    assert body["metrics"] == {"macro_f1": 0.25} and body["trained_on"] == {"manifest_hash": "test"}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_readiness_is_503_without_a_model(client: TestClient) -> None:
    app = client.app
    engine = app.state.engine  # type: ignore[attr-defined]
    app.state.engine = None  # type: ignore[attr-defined]
    try:
        assert client.get("/readyz").status_code == 503
        r = client.post("/v1/classify", files=files(jpeg()))
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
    finally:
        app.state.engine = engine  # type: ignore[attr-defined]


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_metrics_move(client: TestClient) -> None:
    before = client.get("/metrics").text
    classify(client, jpeg())
    client.post("/v1/classify", files=files(b"junk"))
    after = client.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    ok = 'camid_http_requests_total{method="POST",route="/v1/classify",status="200"}'
    assert _metric(after.text, ok) == _metric(before, ok) + 1
    assert _metric(after.text, "camid_decisions_total") == _metric(before, "camid_decisions_total") + 1
    bad = 'camid_errors_total{code="unsupported"}'
    assert _metric(after.text, bad) == _metric(before, bad) + 1
    assert "camid_http_request_seconds_bucket" in after.text


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id <x>"}).headers["x-request-id"]
    assert len(generated) == 32


def test_docs_and_openapi(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def test_every_json_success_body_has_a_model_schema(client: TestClient) -> None:
    """Success bodies in JSON (GeoJSON too) come from a ``response_model``, not a hand-written fragment."""
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    if status.startswith("2") and media.endswith("json"):
                        checked += 1
                        ref = content["schema"].get("$ref", "")
                        assert ref.startswith("#/components/schemas/"), (method, path, content)
    assert checked >= 10  # model, health, ready, classify, 4 submissions, moderator, camera map


def test_errors_have_the_json_shape(client: TestClient) -> None:
    for r in (client.get("/nope"), client.put("/v1/classify"), client.get("/v1/classify")):
        assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message"}
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    assert client.put("/v1/classify").status_code == 405


def test_access_log_has_no_file_names(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="camid.access")
    client.post("/v1/classify", files=files(("secret-name.jpg", jpeg(), "image/jpeg")))
    lines = [r.getMessage() for r in caplog.records if r.name == "camid.access"]
    assert lines and '"route": "/v1/classify"' in lines[-1] and '"labels"' in lines[-1]
    assert all("secret-name" not in line for line in lines)


def test_cors_off_by_default(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_missing_model_fails_startup_with_the_fix(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path / "missing.onnx", tmp_path))
    with pytest.raises(RuntimeError, match="CAMID_MODEL_PATH"), TestClient(app):
        pass


def test_the_app_imports_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, serve.app, serve.routes.classify, serve.uploads;"
        "heavy = {'torch', 'timm', 'torchvision', 'albumentations'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
