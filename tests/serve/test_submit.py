"""The public submit page's HTTP side: the page in Serbian and English, an upload answered with
the verdict in plain words and a follow link that shows only the status, clear errors, rate limit."""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from data.labels import load_labels
from serve.routes.submit import I18N, texts, verdict_words
from tests.serve.intake_fixtures import heic_with_gps, street_photo
from tests.serve.moderation_fixtures import database_url
from tests.serve.test_submissions import moderation_app

__all__ = ["database_url"]


@pytest.fixture
def client(tiny_model: Any, tmp_path: Path, database_url: str | None) -> Iterator[TestClient]:
    app = moderation_app(tiny_model.onnx, tmp_path / "var", database_url, submissions_per_minute=5)
    with TestClient(app) as c:
        yield c


def _send(client: TestClient, data: bytes, name: str = "IMG_1.jpg", **fields: str) -> Any:
    return client.post("/v1/submit", files={"image": (name, data, "image/jpeg")}, data=fields)


def test_page_is_serbian_by_default_and_english_on_request(client: TestClient) -> None:
    page = client.get("/submit")
    assert page.status_code == 200 and '<html lang="sr">' in page.text
    assert (
        "Prijavi kameru" in page.text
        and 'capture="environment"' in page.text
        and 'accept="image/*' in page.text
    )
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = client.get("/submit?lang=en")
    assert "Report a camera" in english.text and "metadata" in english.text  # the privacy notice
    assert client.get("/submit?lang=xx").text.count("Prijavi kameru") >= 1  # unknown: Serbian
    assert client.get("/submit/static/submit.js").status_code == 200
    assert client.get("/submit/static/../settings.py").status_code == 404


def test_upload_answers_in_plain_words_and_follow_shows_only_the_status(client: TestClient) -> None:
    answer = _send(client, street_photo(31), location="44.8125, 20.4612", note="na stubu", lang="en")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "pending" and body["location"] == {
        "lat": 44.8125,
        "lon": 20.4612,
        "source": "form",
    }
    expected = verdict_words(
        {"label": body["label"], "decision": body["decision"]}, load_labels(), texts("en")
    )
    assert body["message"] == expected and expected.endswith(("check it.", "Thank you!"))
    assert body["preview"].startswith("data:image/jpeg;base64,") and "id" not in body
    token = body["follow_url"].split("follow=")[1].split("&")[0]
    assert len(token) >= 24
    status = client.get(f"/v1/follow/{token}")
    assert status.status_code == 200 and set(status.json()) == {"status", "received"}
    assert status.json()["status"] == "pending"
    assert client.get("/v1/follow/" + "x" * 24).status_code == 404
    second = _send(
        client, street_photo(31), location="https://www.openstreetmap.org/#map=18/44.81250/20.46120"
    )
    assert second.json()["duplicate"] is True and second.json()["location"]["lat"] == pytest.approx(44.8125)


def test_a_heic_without_a_typed_location_takes_its_gps(client: TestClient) -> None:
    answer = client.post("/v1/submit", files={"image": ("IMG_0042.HEIC", heic_with_gps(), "image/heic")})
    assert answer.status_code == 201, answer.text
    location = answer.json()["location"]
    assert location["source"] == "exif" and (round(location["lat"], 2), round(location["lon"], 2)) == (
        44.81,
        20.46,
    )
    assert answer.json()["preview"].startswith("data:image/jpeg;base64,")  # browsers cannot show HEIC


def test_the_location_can_be_added_after_the_photo(client: TestClient) -> None:
    answer = _send(client, street_photo(35)).json()  # no GPS in the photo, nothing typed
    assert answer["location"] is None
    token = answer["follow_url"].split("follow=")[1].split("&")[0]
    added = client.post(
        f"/v1/follow/{token}/location", json={"location": "https://maps.apple.com/?ll=44.8043,20.4651"}
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"location": {"lat": 44.8043, "lon": 20.4651, "source": "form"}}
    (item,) = client.app.state.store.list_submissions()[0]  # type: ignore[attr-defined]
    assert item["result"]["location"] == {"lat": 44.8043, "lon": 20.4651, "source": "form"}
    again = client.post(f"/v1/follow/{token}/location", json={"location": "44.10, 20.10"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "location_set"
    unknown = client.post(f"/v1/follow/{'x' * 24}/location", json={"location": "44.10, 20.10"})
    assert unknown.status_code == 404
    unreadable = client.post(f"/v1/follow/{token}/location", json={"location": "kod Slavije"})
    assert unreadable.status_code == 422 and unreadable.json()["error"]["code"] == "invalid_location"


def test_every_upload_error_is_a_clear_message(client: TestClient) -> None:
    bad_location = _send(client, street_photo(32), location="kod Slavije")
    assert bad_location.status_code == 422
    assert "type latitude, longitude" in bad_location.json()["error"]["message"]
    not_photo = _send(client, b"%PDF-1.4 hello", name="prijava.pdf")
    assert not_photo.status_code == 415 and not_photo.json()["error"]["code"] == "unsupported"
    missing = client.post("/v1/submit", data={"location": "44.81, 20.46"}, files={"other": ("a", b"x")})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "missing_field"
    for _ in range(5):
        _send(client, street_photo(33))
    limited = _send(client, street_photo(34))
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"


def test_a_too_large_photo_is_one_photo_too_large(tiny_model: Any, tmp_path: Path) -> None:
    """The page takes one photo: its 413 speaks of that photo, never of sending fewer photos."""
    app = moderation_app(tiny_model.onnx, tmp_path / "var", None, max_bytes=100_000)
    with TestClient(app) as small:
        big = _send(small, b"\xff\xd8\xff" + bytes(1_200_000))  # the request is refused by its length
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    message = big.json()["error"]["message"]
    assert "the photo is too large (at most 100,000 bytes); send a smaller one" in message
    assert "fewer" not in message
    shown = {lang: texts(lang)["errors"]["too_large"] for lang in ("sr", "en")}  # what the page shows
    assert shown == {
        "sr": "Fotografija je prevelika; pošaljite manju.",
        "en": "The photo is too large; send a smaller one.",
    }


def test_translations_have_every_text(client: TestClient) -> None:
    files = sorted(I18N.glob("*.json"))
    assert [f.stem for f in files] == ["en", "sr"]
    keys = [(set(d), set(d["errors"])) for d in (json.loads(f.read_text(encoding="utf-8")) for f in files)]
    assert keys[0] == keys[1]
    page_js = (I18N.parents[1] / "static" / "submit.js").read_text(encoding="utf-8")
    codes = {"missing_field", "network"}
    assert codes <= keys[0][1] and all(f'"{c}"' in page_js for c in codes)


def test_verdict_words_per_decision() -> None:
    labels, t = load_labels(), texts("sr")
    target = labels.targets[0]
    name = labels.get(target).display_name
    assert verdict_words({"label": target, "decision": "flag"}, labels, t) == t["verdict_flag"].replace(
        "{camera}", name
    )
    assert verdict_words({"label": target, "decision": "review"}, labels, t).startswith("Možda je " + name)
    assert verdict_words({"label": labels.negative, "decision": "reject"}, labels, t) == t["verdict_none"]
    assert verdict_words({"label": "other_camera", "decision": "review"}, labels, t) == t["verdict_camera"]
