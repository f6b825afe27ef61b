"""The public submit page in a real browser at phone size (Debian's Chromium through Playwright):
a JPEG in Serbian and an iPhone HEIC in English, each with typed coordinates, answered with the
verdict; the follow link shows the status. Screenshots go to the test's tmp folder, and to
docs/img when ``CAMID_UPDATE_SCREENSHOTS=1``."""

# ruff: noqa: F811 - the live_server fixture is imported from tests.serve.test_moderation_page
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from serve.routes.submit import texts
from tests.serve.test_moderation_page import _browser, _screenshot, live_server

__all__ = ["live_server"]

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}


def _sample(name: str, fmt: str) -> bytes:
    skdata = pytest.importorskip("skimage.data")
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
    img.thumbnail((900, 900))
    buf = io.BytesIO()
    img.save(buf, fmt, quality=85)
    return buf.getvalue()


def _verdicts(lang: str) -> list[str]:
    t = texts(lang)
    return [
        t[k].split("{camera}")[0]
        for k in ("verdict_flag", "verdict_review", "verdict_camera", "verdict_none")
    ]


def _submit(page: Any, base: str, lang: str, photo: Path, tmp_path: Path, shot: str | None) -> str:
    page.goto(f"{base}/submit?lang={lang}")
    page.set_input_files("#photo-file", str(photo))
    page.wait_for_function(f"document.getElementById('photo-name').textContent.includes('{photo.name}')")
    page.fill("#location", "44.8125, 20.4612")
    page.fill("#note", "Na stubu iznad pešačkog prelaza")
    if shot:
        _screenshot(page, f"{shot}-form.png", tmp_path)
    page.click("#send")
    page.wait_for_selector("#verdict:not([hidden])", timeout=60_000)
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    verdict = str(page.text_content("#verdict-text"))
    assert any(verdict.startswith(start) for start in _verdicts(lang)), verdict
    assert "44.81250, 20.46120" in str(page.text_content("#verdict-location"))
    if shot:
        _screenshot(page, f"{shot}-verdict.png", tmp_path)
    return str(page.get_attribute("#follow-link", "href"))


# The tiny test model finds no boxes: the page's fetch of /v1/submit gets one camera box added
# (the second quarter across and down), so the drawing is seen in the browser.
WITH_A_CAMERA = """
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  if (!String(args[0]).endsWith("/v1/submit") || !response.ok) return response;
  const answer = await response.json();
  const [w, h] = [answer.width, answer.height];
  answer.cameras = [{box: [w / 4, h / 4, w / 2, h / 2], label: "Huawei IPC6625-Z30", confidence: 0.9}];
  return new Response(JSON.stringify(answer), {status: response.status, headers: response.headers});
};
"""


@pytest.mark.slow
def test_phone_submits_a_jpeg_and_a_heic_with_typed_coordinates(live_server: Any, tmp_path: Path) -> None:
    sync_api = _browser()
    base, app = live_server
    jpeg, heic = tmp_path / "IMG_0001.jpg", tmp_path / "IMG_0002.heic"
    jpeg.write_bytes(_sample("rocket", "JPEG"))
    heic.write_bytes(_sample("coffee", "HEIF"))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport=PHONE, has_touch=True, is_mobile=True, bypass_csp=True)
            page.route("https://*.openstreetmap.org/**", lambda route: route.abort())  # no tiles offline
            page.goto(f"{base}/submit")
            assert page.text_content("h1") == texts("sr")["title"]
            assert page.get_attribute("#photo-camera", "capture") == "environment"
            if page.is_visible("#pin-map"):  # a tap on the map drops the pin and fills the field
                page.click("#pin-map", position={"x": 195, "y": 110})
                assert page.input_value("#location").count(".") == 2
            follow = _submit(page, base, "sr", jpeg, tmp_path, "submit-phone")
            page.add_init_script(WITH_A_CAMERA)
            _submit(page, base, "en", heic, tmp_path, None)
            box = page.locator("#boxes .box")
            assert box.count() == 1 and box.text_content() == "Huawei IPC6625-Z30"
            drawn, photo = box.bounding_box(), page.locator("#preview").bounding_box()
            assert drawn and photo and abs(drawn["width"] - photo["width"] / 4) < 2
            page.goto(base + follow)
            page.wait_for_function("document.getElementById('status-text').textContent.length > 0")
            assert page.text_content("#status-text") == texts("sr")["status_pending"]
            located = browser.new_context(  # "My location": the phone's GPS fills the field
                viewport=PHONE,
                geolocation={"latitude": 44.80431, "longitude": 20.46512},
                permissions=["geolocation"],
            ).new_page()
            located.goto(f"{base}/submit?lang=en")
            located.click("#locate")
            located.wait_for_function("document.getElementById('location').value.length > 0")
            assert located.input_value("#location") == "44.804310, 20.465120"
            located.set_input_files("#photo-file", str(jpeg))  # a photo whose GPS the phone removed
            located.fill("#location", "")
            located.click("#send")
            located.wait_for_selector("#add-location:not([hidden])")  # the location can follow
            assert located.text_content("#verdict-location") == texts("en")["verdict_no_location"]
            located.fill("#late-location", "44.8043, 20.4651")
            located.click("#add-location button[type=submit]")
            located.wait_for_selector("#add-location", state="hidden")
            assert "44.80430, 20.46510 — Location added" in str(located.text_content("#verdict-location"))
        finally:
            browser.close()
    items, total = app.state.store.list_submissions()
    assert total == 3 and {i["source"] for i in items} == {"submit"}
    for name in ("submit-phone-form.png", "submit-phone-verdict.png"):
        assert (tmp_path / name).stat().st_size < 300_000
