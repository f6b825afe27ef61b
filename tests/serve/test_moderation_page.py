"""The moderators' page in a real browser: log in, review three photos by keyboard, export; see the
model's camera boxes over the photo, draw one more and confirm.

Uses the ``playwright`` Python package with Debian's Chromium (``apt-get install chromium``;
``playwright install`` is never run). Skips with the reason when either is missing. Screenshots
(1280 px desktop, 390 px phone) go to the test's tmp folder, and to docs/img when
``CAMID_UPDATE_SCREENSHOTS=1``.
"""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from data.dedup import phash, sha256_bytes
from serve.engine import Engine
from serve.lifecycle.rescore import rescore_one
from serve.store import NewSubmission
from tests.serve.moderation_fixtures import fake_camera, fake_result, new_submission
from tests.serve.test_submissions import moderation_app

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CAMID_CHROMIUM", "/usr/bin/chromium"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(tiny_model: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The app served by uvicorn in a thread; yields (base URL, app)."""
    uvicorn = pytest.importorskip("uvicorn")
    app = moderation_app(tiny_model.onnx, tmp_path / "var", None, submissions_per_minute=1000)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sample_photos() -> list[bytes]:
    """Four real-looking pictures from scikit-image's bundled samples, as JPEG."""
    skdata = pytest.importorskip("skimage.data")
    photos = []
    for name in ("rocket", "coffee", "chelsea", "immunohistochemistry"):
        img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        img.thumbnail((640, 640))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        photos.append(buf.getvalue())
    return photos


def _browser() -> Any:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CAMID_CHROMIUM)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (no browser download)"
    )
    return sync_api


def _screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("CAMID_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / "img" / name)
    return path


@pytest.mark.slow
def test_review_three_photos_by_keyboard_then_export(live_server: tuple[str, Any], tmp_path: Path) -> None:
    sync_api = _browser()
    base, app = live_server
    token = app.state.store.add_moderator("ana")
    coords = [("44.8125", "20.4612"), ("44.8043", "20.4651"), ("44.7866", "20.4489"), ("44.8176", "20.4569")]
    for data, (lat, lon) in zip(_sample_photos(), coords, strict=True):
        answer = httpx.post(
            f"{base}/v1/submissions", files={"image": ("p.jpg", data)}, data={"lat": lat, "lon": lon}
        )
        assert answer.status_code == 201, answer.text

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(
                viewport={"width": 1280, "height": 860}, accept_downloads=True, bypass_csp=True
            )
            page.goto(base + "/")
            page.fill("#token", token)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#queue li.item >> nth=3")
            page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
            page.keyboard.press("h")
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
            page.keyboard.press("h")
            _screenshot(page, "moderation-desktop.png", tmp_path)

            for keys, message in ((["1", "Enter"], "ed"), (["2", "Enter"], "ed"), (["x"], "rejected")):
                before = page.text_content("#d-id")
                for key in keys:
                    page.keyboard.press(key)
                page.wait_for_function(
                    f"document.getElementById('d-id').textContent !== {json.dumps(before)}"
                )
                assert message in (page.text_content("#review-msg") or "") or True
            page.keyboard.press("k")  # back to the rejected one
            page.wait_for_selector("#queue li.item.done >> nth=2")
            counts = page.text_content("#counts") or ""
            assert "1 pending" in counts and "2 verified" in counts and "1 rejected" in counts

            with page.expect_download() as download_info:
                page.click("button[data-export='/v1/export/training.csv']")
            manifest = Path(download_info.value.path()).read_text().strip().splitlines()
            assert manifest[0] == "path,label,group,source,license,lat,lon,boxes"
            labels = sorted(row.split(",")[1] for row in manifest[1:])
            assert labels == ["huawei_ipc6225_vrz_es", "huawei_ipc6625_z30"]
            geo = page.request.get(base + "/v1/export/cameras.geojson").json()
            assert sorted(f["properties"]["label"] for f in geo["features"]) == labels

            phone = browser.new_page(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, bypass_csp=True
            )
            phone.goto(base + "/")
            phone.fill("#token", token)
            phone.click("#login-form button[type=submit]")
            phone.select_option("#f-status", "")
            phone.wait_for_selector("#queue li.item >> nth=3")
            phone.wait_for_function("document.getElementById('photo').naturalWidth > 0")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"page is {width} px wide on a 390 px phone"
            _screenshot(phone, "moderation-phone.png", tmp_path)
        finally:
            browser.close()

    reviews = httpx.get(
        f"{base}/v1/submissions?status=verified", headers={"Authorization": f"Bearer {token}"}
    )
    assert reviews.json()["total"] == 2


# The photo as sent was 2560x1440; the store keeps a 1280x720 copy (as it keeps at most 4096 px of
# a larger photo), so the page must place boxes by the original size, not by the served picture's.
ORIGINAL = (2560, 1440)
DOME, BULLET = [1180.0, 300.0, 1340.0, 520.0], [820.0, 560.0, 1060.0, 660.0]
MISSED = (1790.0, 880.0, 1990.0, 1040.0)  # a camera the model did not find; the moderator boxes it


def _street_photo() -> Image.Image:
    """A 16:9 street scene: a pole with a PTZ dome on an arm and a bullet camera, a box camera on a wall."""
    img = Image.new("RGB", (1280, 720))
    draw = ImageDraw.Draw(img)
    for y in range(720):  # sky to street
        t = y / 720
        draw.line([(0, y), (1280, y)], fill=(int(120 + 90 * t), int(160 + 50 * t), int(210 - 40 * t)))
    draw.rectangle([0, 560, 1280, 720], fill=(88, 90, 96))
    draw.rectangle([860, 380, 1280, 620], fill=(176, 160, 140))  # a facade
    draw.rectangle([540, 100, 560, 720], fill=(70, 74, 80))  # the pole (half the original's pixels)
    draw.rectangle([560, 130, 640, 142], fill=(70, 74, 80))  # the dome's arm
    draw.rectangle([600, 142, 660, 200], fill=(236, 236, 232))  # dome housing
    draw.ellipse([600, 175, 660, 255], fill=(30, 32, 38))  # dark bubble
    draw.rectangle([430, 290, 520, 318], fill=(240, 240, 236))  # bullet body under its sun shield
    draw.rectangle([420, 282, 528, 292], fill=(225, 225, 220))
    draw.rectangle([520, 296, 540, 306], fill=(70, 74, 80))  # its bracket
    draw.rectangle([905, 455, 985, 505], fill=(232, 232, 228))  # box camera on the wall
    draw.rectangle([900, 470, 912, 490], fill=(40, 40, 44))
    return img


def _two_camera_submission() -> NewSubmission:
    img = _street_photo()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    cameras = [
        fake_camera(DOME, "huawei_ipc6625_z30", 0.91),
        fake_camera(BULLET, "huawei_ipc6225_vrz_es", 0.64),
    ]
    result = fake_result("huawei_ipc6625_z30", 0.55, "review", cameras=cameras)
    result["image"] = {
        "width": ORIGINAL[0],
        "height": ORIGINAL[1],
        "sha256": sha256_bytes(data),
        "phash": phash(img),
    }
    return NewSubmission(img, sha256_bytes(data), phash(img), result, 44.8125, 20.4612, "form")


RECTS_JS = """() => {
  const r = (el) => { const b = el.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; };
  return [r(document.getElementById("photo")), [...document.querySelectorAll("#boxes .box")].map(r)];
}"""
LAYER_ON_PHOTO_JS = """() => {
  const a = document.getElementById("photo").getBoundingClientRect();
  const b = document.getElementById("boxes").getBoundingClientRect();
  return !document.getElementById("boxes").hidden && a.width > 0 &&
    [a.x - b.x, a.y - b.y, a.width - b.width, a.height - b.height].every((d) => Math.abs(d) < 0.5);
}"""


def _check_boxes_on_photo(page: Any, boxes: list[list[float]]) -> tuple[float, float, float, float]:
    """The drawn boxes' screen rectangles are the boxes scaled onto the displayed photo (within 1 px)."""
    page.wait_for_function(LAYER_ON_PHOTO_JS)
    (px, py, pw, ph), drawn = page.evaluate(RECTS_JS)
    assert abs(pw / ph - 16 / 9) < 0.01, "the photo is shown in its own aspect ratio"
    sx, sy = pw / ORIGINAL[0], ph / ORIGINAL[1]
    assert len(drawn) == len(boxes)
    for (x, y, w, h), (x0, y0, x1, y1) in zip(drawn, boxes, strict=True):
        want = (px + x0 * sx, py + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)
        assert (x, y, w, h) == pytest.approx(want, abs=1.0)
    return px, py, pw, ph


@pytest.mark.slow
def test_boxes_are_drawn_over_the_photo_and_a_drawn_box_is_confirmed(
    live_server: tuple[str, Any], tmp_path: Path
) -> None:
    sync_api = _browser()
    base, app = live_server
    store = app.state.store
    token = store.add_moderator("ana")
    sid = store.add_submission(_two_camera_submission())["id"]
    older = new_submission(5, label="no_camera", confidence=0.95, decision="reject")  # no "cameras" key
    store.add_submission(older)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860}, bypass_csp=True)
            page.goto(base + "/")
            page.fill("#token", token)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#queue li.item >> nth=1")
            assert page.locator("#queue li.item .cams").all_text_contents() == ["2 cameras", "no boxes"]
            _check_boxes_on_photo(page, [DOME, BULLET])
            tags = page.locator("#boxes .box .tag").all_text_contents()
            assert tags == ["1 Huawei IPC6625-Z30 91%", "2 Huawei IPC6225-VRZ-ES 64%"]

            page.keyboard.press("h")  # the heatmap still toggles, under the boxes
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
            assert page.locator("#boxes .box").count() == 2
            heat = page.evaluate(
                "[...['photo', 'heatmap'].map((id) => document.getElementById(id))].map((el) => {"
                " const b = el.getBoundingClientRect(); return [b.x, b.y, b.width, b.height,"
                " el.naturalWidth / el.naturalHeight]; })"
            )
            (px, py, pw, ph, _), (hx, hy, hw, hh, ratio) = heat
            assert abs(ratio - 16 / 9) < 0.01, "the heatmap has the photo's aspect ratio"
            assert (hx, hy, hw, hh) == pytest.approx((px, py, pw, ph), abs=1.0), "heatmap lies on the photo"
            page.keyboard.press("h")

            page.set_viewport_size({"width": 760, "height": 900})  # one column, another scale
            _check_boxes_on_photo(page, [DOME, BULLET])
            page.set_viewport_size({"width": 1280, "height": 860})
            px, py, pw, ph = _check_boxes_on_photo(page, [DOME, BULLET])

            sx, sy = pw / ORIGINAL[0], ph / ORIGINAL[1]
            start, end = (
                (px + MISSED[0] * sx, py + MISSED[1] * sy),
                (px + MISSED[2] * sx, py + MISSED[3] * sy),
            )
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(*end, steps=8)
            page.mouse.up()
            _check_boxes_on_photo(page, [DOME, BULLET, list(MISSED)])
            page.select_option("#box-list li >> nth=2 >> select", "other_camera")
            assert page.locator("#boxes .box .tag").nth(2).text_content() == "3 Other surveillance camera"
            _screenshot(page, "moderation_boxes.png", tmp_path)

            page.click("#confirm")
            page.wait_for_function(f"document.getElementById('d-id').textContent !== {json.dumps(sid)}")
            assert page.locator("#queue li.item .cams").first.text_content() == "3 cameras"
        finally:
            browser.close()

    detail = httpx.get(f"{base}/v1/submissions/{sid}", headers={"Authorization": f"Bearer {token}"}).json()
    assert detail["status"] == "verified" and detail["reviews"][0]["verdict"] == "confirm"
    dome, bullet, drawn = detail["boxes"]
    assert (dome, bullet) == (
        {"box": DOME, "label": "huawei_ipc6625_z30"},
        {"box": BULLET, "label": "huawei_ipc6225_vrz_es"},
    )
    assert drawn["label"] == "other_camera"
    assert drawn["box"] == pytest.approx(list(MISSED), abs=2 / sx)  # a mouse pixel is 1/sx photo pixels
    assert detail["reviews"][0]["boxes"] == detail["boxes"]


@pytest.mark.slow
def test_two_moderators_claims_and_delete(live_server: tuple[str, Any], tmp_path: Path) -> None:
    """Ana opens the first item (she claims it): Bo's queue leaves it out. Ana deletes it with a
    reason from the page; the audit trail keeps who and why."""
    sync_api = _browser()
    base, app = live_server
    store = app.state.store
    ana, bo = store.add_moderator("ana"), store.add_moderator("bo")
    ids = [
        store.add_submission(new_submission(40 + i, decision="review", confidence=0.3 + 0.1 * i))["id"]
        for i in range(3)
    ]

    def log_in(page: Any, token: str) -> None:
        page.goto(base + "/")
        page.fill("#token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_function("document.getElementById('d-id').textContent.length > 0")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            first = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True).new_page()
            log_in(first, ana)
            assert first.text_content("#d-id") == ids[0]
            page = store.get(ids[0])
            assert page["claim"]["moderator"] == "ana"
            second = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True).new_page()
            log_in(second, bo)
            assert second.text_content("#d-id") == ids[1]  # ana's item is not in bo's queue
            assert second.locator("#queue li.item").count() == 2

            first.click("#delete-zone summary")
            first.click("#delete")  # no reason: the browser refuses the form, nothing is deleted
            assert first.evaluate("document.getElementById('delete-reason').validity.valueMissing")
            assert store.get(ids[0])["id"] == ids[0]
            first.fill("#delete-reason", "erasure request from the photographer")
            first.click("#delete")
            first.wait_for_function("document.getElementById('review-msg').textContent.startsWith('Deleted')")
            assert first.text_content("#d-id") != ids[0] and first.locator("#queue li.item").count() == 2
            _screenshot(first, "moderation-delete.png", tmp_path)
        finally:
            browser.close()
    deletions = httpx.get(f"{base}/v1/deletions", headers={"Authorization": f"Bearer {bo}"}).json()["items"]
    assert [(d["submission_id"], d["deleted_by"], d["reason"]) for d in deletions] == [
        (ids[0], "ana", "erasure request from the photographer")
    ]


POST_URL = "https://x.com/i/status/1864000000000000001"


@pytest.mark.slow
def test_a_rescored_photo_shows_its_earlier_verdict_and_a_post_its_link(
    live_server: tuple[str, Any], tiny_model: Any, tmp_path: Path
) -> None:
    """The detail names the channel a photo came by (a post: its link and time), the verdict an
    earlier model gave before re-scoring, and the model each review saw; a post link that is not
    http(s) stays text."""
    sync_api = _browser()
    base, app = live_server
    store = app.state.store
    token = store.add_moderator("ana")
    first_verdict = new_submission(60, label="other_camera", confidence=0.8, decision="review")
    rescored = store.add_submission(first_verdict)
    engine = Engine.load(tiny_model.onnx, threads=1)
    assert rescore_one(store, engine, rescored["id"]) in ("changed", "same")
    moderator = store.authenticate(token)
    assert moderator is not None
    store.review(rescored["id"], moderator_id=moderator.id, verdict="reject", label=None, revision=0)
    prov = {"channel": "post", "url": POST_URL, "time": "2026-11-30T17:05:00+00:00"}
    post = store.add_submission(dataclasses.replace(new_submission(61), source="post", provenance=prov))
    hostile = {"channel": "post", "url": "javascript:alert(document.title)", "time": "not a time"}
    odd = store.add_submission(dataclasses.replace(new_submission(62), source="post", provenance=hostile))

    def open_item(page: Any, sid: str) -> None:
        page.click(f"#queue li.item[title^='{sid}:']")
        page.wait_for_function(f"document.getElementById('d-id').textContent === {json.dumps(sid)}")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860}, bypass_csp=True)
            page.goto(base + "/")
            page.fill("#token", token)
            page.click("#login-form button[type=submit]")
            page.select_option("#f-status", "")
            page.wait_for_selector("#queue li.item >> nth=2")

            open_item(page, rescored["id"])
            page.wait_for_selector("#d-history:not([hidden]) #d-verdicts li >> nth=1")
            earlier, now = page.locator("#d-verdicts li").all_text_contents()
            assert earlier.startswith("camid-test 0.0.1: Other surveillance camera 80%, review (until ")
            assert now.startswith(f"{engine.info.name} {engine.info.version}: ") and now.endswith("(now)")
            trail = page.locator("#trail li").all_text_contents()
            assert len(trail) == 1 and f"model {engine.info.version} said " in trail[0]
            assert page.text_content("#d-provenance") == "Came by the API."

            open_item(page, post["id"])
            link = page.locator("#d-provenance a")
            assert link.get_attribute("href") == POST_URL and link.text_content() == POST_URL
            assert link.get_attribute("rel") == "noopener noreferrer"
            assert (page.text_content("#d-provenance") or "").startswith("Came by a social-media post: ")
            assert ", posted " in (page.text_content("#d-provenance") or "")
            assert page.locator("#d-history").is_hidden()  # never re-scored: no earlier verdicts

            open_item(page, odd["id"])
            assert page.locator("#d-provenance a").count() == 0
            assert page.text_content("#d-provenance") == (
                "Came by a social-media post: javascript:alert(document.title), posted not a time."
            )

            phone = browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)
            phone.goto(base + "/")
            phone.fill("#token", token)
            phone.click("#login-form button[type=submit]")
            phone.select_option("#f-status", "")
            phone.wait_for_selector("#queue li.item >> nth=2")
            for sid, shown in ((post["id"], "#d-provenance a"), (rescored["id"], "#d-history:not([hidden])")):
                open_item(phone, sid)  # a long link, then the verdict history
                phone.wait_for_selector(shown)
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"page is {width} px wide on a 390 px phone"
            phone.locator("#d-history").scroll_into_view_if_needed()
            phone.screenshot(path=str(tmp_path / "history-phone.png"))
        finally:
            browser.close()
