"""The public map in a real browser with every tile server blocked: clusters, a popup with the
blurred photo, the model filter and the GeoJSON download; screenshots at desktop and phone width.

Uses the ``playwright`` Python package with Debian's Chromium (``playwright install`` is never
run); skips with the reason when either is missing. Screenshots go to the test's tmp folder, and
to docs/img when ``CAMID_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.serve.test_moderation_page import _browser, _sample_photos, live_server  # noqa: F401 - fixture
from tests.serve.test_moderation_page import _screenshot as shoot

CHROMIUM = Path(os.environ.get("CAMID_CHROMIUM", "/usr/bin/chromium"))
MAX_SCREENSHOT_BYTES = 300_000
# three groups of nearby poles (clusters at city zoom) and two lone cameras, in Belgrade
SPOTS = [
    *[(44.8125 + 0.0006 * i, 20.4612 + 0.0004 * i) for i in range(4)],
    *[(44.8043 + 0.0005 * i, 20.4851 - 0.0005 * i) for i in range(3)],
    *[(44.7866 + 0.0004 * i, 20.4489) for i in range(3)],
    (44.8232, 20.4152),
    (44.7700, 20.4800),
]


def _photos(n: int) -> list[bytes]:
    """``n`` distinct JPEGs cut from scikit-image's sample pictures."""
    base = _sample_photos()
    out = []
    for i in range(n):
        img = Image.open(io.BytesIO(base[i % len(base)]))
        w, h = img.size
        dx = 8 * (i // len(base))
        buf = io.BytesIO()
        img.crop((dx, 0, w - 8 + dx // 2, h)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def _populate(base: str, app: Any) -> None:
    store = app.state.store
    mod = store.authenticate(store.add_moderator("ana"))
    labels = ["huawei_ipc6625_z30", "huawei_ipc6225_vrz_es"]
    for i, (data, (lat, lon)) in enumerate(zip(_photos(len(SPOTS)), SPOTS, strict=True)):
        r = httpx.post(
            f"{base}/v1/submissions", files={"image": ("p.jpg", data)}, data={"lat": lat, "lon": lon}
        )
        assert r.status_code == 201, r.text
        store.review(
            r.json()["id"], moderator_id=mod.id, verdict="correct", label=labels[i % 3 == 2], revision=0
        )


def _screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    path = shoot(page, name, tmp_path, full_page=False)
    assert path.stat().st_size < MAX_SCREENSHOT_BYTES, f"{name}: {path.stat().st_size} bytes"
    return path


@pytest.mark.slow
def test_map_offline_clusters_popup_download(live_server: tuple[str, Any], tmp_path: Path) -> None:  # noqa: F811
    sync_api = _browser()
    base, app = live_server
    _populate(base, app)
    own = urlsplit(base).netloc
    blocked: list[str] = []

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc == own:
            r.continue_()
        else:  # tile servers and anything else outside: no network
            blocked.append(r.request.url)
            r.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(
                viewport={"width": 1280, "height": 800}, accept_downloads=True, bypass_csp=True
            )
            page.route("**/*", route)
            page.goto(base + "/map")
            page.wait_for_selector(".marker-cluster")
            assert "12 cameras on the map" in (page.text_content("#summary") or "")
            assert any(
                "tile.openstreetmap.org" in url for url in blocked
            )  # tiles were asked for, and refused
            assert page.locator(".marker-cluster").count() >= 2
            page.wait_for_selector("#chart-month svg rect")
            page.wait_for_selector("#map[data-loaded='12']", state="attached")

            page.locator(".leaflet-marker-icon.cam-icon").first.click()
            page.wait_for_selector(".leaflet-popup-content .cam-popup")
            popup = page.text_content(".leaflet-popup-content") or ""
            assert "Huawei" in popup and "first seen" in popup and "photos" in popup
            page.wait_for_function("document.querySelector('.cam-popup img').naturalWidth > 0")
            _screenshot(page, "map-desktop.png", tmp_path)

            with page.expect_download() as info:
                page.click("#dl-geojson")
            doc = json.loads(Path(info.value.path()).read_text())
            assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 12

            page.select_option("#model", "huawei_ipc6225_vrz_es")
            page.wait_for_function("document.getElementById('summary').textContent.startsWith('4 cameras')")
            assert (
                page.get_attribute("#dl-kml", "href") == "/v1/export/cameras.kml?model=huawei_ipc6225_vrz_es"
            )

            phone = browser.new_page(
                viewport={"width": 390, "height": 844}, device_scale_factor=1, bypass_csp=True
            )
            phone.route("**/*", route)
            phone.goto(base + "/map")
            phone.wait_for_selector(".marker-cluster")
            _screenshot(phone, "map-phone.png", tmp_path)
        finally:
            browser.close()


@pytest.mark.slow
def test_moderators_page_proposes_the_camera(live_server: tuple[str, Any], tmp_path: Path) -> None:  # noqa: F811
    sync_api = _browser()
    base, app = live_server
    store = app.state.store
    token = store.add_moderator("ana")
    mod = store.authenticate(token)
    first, second, third = _photos(3)
    r = httpx.post(
        f"{base}/v1/submissions", files={"image": ("p.jpg", first)}, data={"lat": 44.8125, "lon": 20.4612}
    )
    store.review(
        r.json()["id"], moderator_id=mod.id, verdict="correct", label="huawei_ipc6625_z30", revision=0
    )
    cam = f"cam-{r.json()['id']}"
    near = {"lat": 44.8125 + 14 / 111_320, "lon": 20.4612}  # 14 m north
    assert (
        httpx.post(f"{base}/v1/submissions", files={"image": ("p.jpg", second)}, data=near).status_code == 201
    )
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page.goto(base + "/")
            page.fill("#token", token)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#camera-match:not([hidden]) fieldset")
            text = page.text_content("#camera-match") or ""
            assert f"same as camera {cam}" in text and "14 m away, 1 photo" in text
            legend = page.text_content("#camera-match legend") or ""
            assert legend.startswith("Box 1 (") and "_" not in legend  # a class's display name, not its id

            # a verified photo 40 m off made its own camera; the panel merges it into the first
            far = httpx.post(f"{base}/v1/submissions", files={"image": ("p.jpg", third)},
                             data={"lat": 44.8125 + 40 / 111_320, "lon": 20.4612}).json()["id"]  # fmt: skip
            store.review(far, moderator_id=mod.id, verdict="correct", label="huawei_ipc6625_z30", revision=0)
            page.evaluate(  # show it as the page does after moving to it
                "([id]) => { document.getElementById('d-status').textContent = 'verified';"
                " document.getElementById('d-id').textContent = id; }",
                [far],
            )
            page.wait_for_selector(f"#camera-match .cm-merge >> text=Merge cam-{far} into")
            assert "a new camera" in (page.text_content("#camera-match") or "")
            page.fill("#camera-match .cm-merge input", cam)
            page.click("#camera-match .cm-merge button")
            page.wait_for_selector(f"#cm-msg >> text=merged cam-{far} into {cam} (2 photos)")
        finally:
            browser.close()


@pytest.mark.slow
def test_the_map_works_under_its_own_content_security_policy(live_server: tuple[str, Any]) -> None:  # noqa: F811
    sync_api = _browser()
    base, app = live_server
    _populate(base, app)
    own = urlsplit(base).netloc
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 700})  # CSP enforced
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.route(
                "**/*", lambda r: r.continue_() if urlsplit(r.request.url).netloc == own else r.abort()
            )
            page.goto(base + "/map")
            page.wait_for_selector(".marker-cluster")
            page.wait_for_selector("#map[data-loaded='12']", state="attached")
            page.locator(".leaflet-marker-icon.cam-icon").first.click()
            page.wait_for_selector(".leaflet-popup-content .cam-popup")
            page.wait_for_selector(".cam-popup img")  # visible: the lazy photo loaded (height 0 before)
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()
