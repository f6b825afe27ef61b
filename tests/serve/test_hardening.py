"""Hostile uploads, limits, overload and privacy: a bad request gets a 4xx and nothing touches the disk."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from serve.app import create_app
from serve.errors import ApiError
from serve.uploads import UploadLimits, read_multipart
from tests.serve.apptools import GatedEngine, files, settings_for, wait_for
from tests.serve.hostile_corpus import Case, corpus, encode, gradient, jpeg, photo

CORPUS = corpus()
MULTIPART_B = {"content-type": "multipart/form-data; boundary=b"}


@pytest.fixture(scope="module")
def model_path(tiny_model: Any) -> Path:
    path: Path = tiny_model.onnx
    return path


@pytest.fixture(scope="module")
def client(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(model_path, tmp_path_factory.mktemp("var")))) as c:
        yield c


def make_client(model_path: Path, tmp_path: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(settings_for(model_path, tmp_path, **overrides)))


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_upload(client: TestClient, case: Case) -> None:
    r = client.post("/v1/classify", files=[("image", (case.filename, case.data, case.content_type))])
    assert r.status_code == case.status, r.text
    body = r.json()
    if case.code is not None:
        assert body["error"]["code"] == case.code
        assert "image[0]" in body["error"]["message"]
    else:
        assert len(body["results"]) == 1
    assert " at 0x" not in r.text and "BytesIO" not in r.text and "<bytes>" not in r.text
    stem = case.filename.rsplit(".", 1)[0]
    for text in (r.text, str(dict(r.headers))):
        assert case.filename not in text and "passwd" not in text and "<script>" not in text
        assert len(stem) < 6 or stem not in text


def test_still_healthy_after_the_corpus(client: TestClient) -> None:
    for case in CORPUS:  # once more, all in one request each, then liveness
        client.post("/v1/classify", files=[("image", (case.filename, case.data, case.content_type))])
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_byte_limit(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, max_bytes=5_000) as c:
        r = c.post("/v1/classify", files=files(encode(photo((300, 200), seed=1), "PNG")))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_pixel_limit(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, max_pixels=1_000) as c:
        r = c.post("/v1/classify", files=files(jpeg((80, 60))))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_pixels"


def test_too_many_files(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, max_files_per_request=2) as c:
        r = c.post("/v1/classify", files=files(jpeg(), jpeg(), jpeg()))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_files"


def test_whole_request_refused_from_content_length(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, max_bytes=1_000, max_files_per_request=1) as c:
        body = b"x" * (1_000 + 1_048_576 + 1)
        r = c.post("/v1/classify", content=body, headers=MULTIPART_B)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_body_limit_without_content_length(model_path: Path, tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 65_536

    with make_client(model_path, tmp_path, max_bytes=1_000, max_files_per_request=1) as c:
        r = c.post("/v1/classify", content=chunks(), headers=MULTIPART_B)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({}, 422, "missing_field"),
        ({"files": [("photo", ("a.jpg", b"\xff\xd8\xff", "image/jpeg"))]}, 422, "missing_field"),
        ({"data": {"image": "not a file"}}, 415, "unsupported_media_type"),
        ({"json": {"image": "aGVsbG8="}}, 415, "unsupported_media_type"),
        (
            {"content": b"--b\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            400,
            "bad_multipart",
        ),
    ],
    ids=["no_body", "wrong_field", "text_field", "json_body", "no_boundary"],
)
def test_malformed_requests(client: TestClient, kwargs: dict[str, Any], status: int, code: str) -> None:
    r = client.post("/v1/classify", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_garbage_multipart_is_a_4xx(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    for i in range(20):
        body = b"--b\r\n" + rng.bytes(int(rng.integers(0, 300))) + (b"\r\n--b--\r\n" if i % 2 else b"")
        r = client.post("/v1/classify", content=body, headers=MULTIPART_B)
        assert 400 <= r.status_code < 500, r.text


def test_bad_query_parameter_is_422(client: TestClient) -> None:
    r = client.post("/v1/classify", files=files(jpeg()), params={"heatmap": "maybe"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_saturated_queue_answers_503_with_retry_after(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, inference_threads=1, queue_size=1, retry_after_s=3) as c:
        app: Any = c.app
        slow = GatedEngine(app.state.engine)
        app.state.engine = slow
        statuses: list[int] = []
        workers = [
            threading.Thread(
                target=lambda: statuses.append(c.post("/v1/classify", files=files(jpeg())).status_code)
            )
            for _ in range(2)
        ]
        for w in workers:
            w.start()
        wait_for(lambda: app.state.pool.pending == 2)
        r = c.post("/v1/classify", files=files(jpeg()))
        slow.gate.set()
        for w in workers:
            w.join(10)
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["code"] == "overloaded"
    assert statuses == [200, 200]


def test_slow_inference_times_out_with_503(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, request_timeout_s=0.2) as c:
        app: Any = c.app
        slow = GatedEngine(app.state.engine)
        app.state.engine = slow
        r = c.post("/v1/classify", files=files(jpeg()))
        slow.gate.set()
        wait_for(lambda: app.state.pool.pending == 0)  # the slot is held until the thread finishes
    assert r.status_code == 503 and r.json()["error"]["code"] == "timeout" and "retry-after" in r.headers


class DiskWatch:
    """An audit hook recording every file opened for writing while ``active`` (hooks cannot be removed)."""

    installed: DiskWatch | None = None

    def __init__(self) -> None:
        self.active = False
        self.writes: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and any(m in mode for m in "wax+")) or (
                isinstance(flags, int) and flags & 0o3  # O_WRONLY | O_RDWR
            )
            if writing:
                self.writes.append(str(path))
        elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
            self.writes.append(str(args[0]))

    @classmethod
    def get(cls) -> DiskWatch:
        if cls.installed is None:
            cls.installed = DiskWatch()
        return cls.installed


def test_classify_writes_nothing_to_disk(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an upload was spooled to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    rng = np.random.default_rng(0)
    big = encode(Image_from(rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)), "JPEG", quality=95)
    assert len(big) > 2 * 1024 * 1024  # over Starlette's 1 MiB in-memory spool
    watch = DiskWatch.get()
    before = set(Path(tempfile.gettempdir()).iterdir())
    watch.active = True
    try:
        r = client.post("/v1/classify", files=files(big, jpeg()))
    finally:
        watch.active = False
    assert r.status_code == 200, r.text
    assert watch.writes == []
    assert set(Path(tempfile.gettempdir()).iterdir()) == before


def Image_from(arr: np.ndarray) -> Any:  # noqa: N802 - reads like the PIL constructor it wraps
    from PIL import Image

    return Image.fromarray(arr)


class BrokenEngine(GatedEngine):
    def classify(self, images: Any, heatmap: bool = False, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /srv/model.onnx")


def test_unexpected_error_is_a_json_500_without_internals(model_path: Path, tmp_path: Path) -> None:
    app = create_app(settings_for(model_path, tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        app.state.engine = BrokenEngine(app.state.engine)
        r = c.post("/v1/classify", files=files(jpeg()))
        assert c.get("/healthz").status_code == 200
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal", "message": "internal server error; the incident was logged"}
    }
    assert "secret" not in r.text


def test_slow_upload_times_out_with_408() -> None:
    head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": head + b"\xff" * 10, "more_body": True}

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", MULTIPART_B["content-type"].encode())],
    }
    with pytest.raises(ApiError) as caught:
        asyncio.run(read_multipart(Request(scope, receive), limits=UploadLimits(timeout_s=0.3)))
    assert caught.value.status == 408 and caught.value.code == "upload_timeout"


def test_body_without_closing_boundary_is_400(client: TestClient) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n' + jpeg()
    r = client.post("/v1/classify", content=body, headers=MULTIPART_B)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_multipart"


def gray16_png(size: tuple[int, int]) -> bytes:
    """A photo-like 16-bit grayscale PNG."""
    grey = np.asarray(photo(size).convert("L"), dtype=np.uint16) * 257
    return encode(Image_from(grey), "PNG")


def float_tiff(size: tuple[int, int]) -> bytes:
    """A photo-like 32-bit float TIFF (values 0..1), deflate-compressed."""
    grey = np.asarray(photo(size).convert("L"), dtype=np.float32) / 255
    return encode(Image_from(grey), "TIFF", compression="tiff_adobe_deflate")


@pytest.mark.parametrize(
    ("data", "needed_mb"),
    [(gray16_png((2500, 2000)), 10), (float_tiff((2000, 1500)), 12)],
    ids=["png16", "tiff_f"],
)
def test_deep_photos_are_held_to_the_decoded_size_budget(
    model_path: Path, tmp_path: Path, data: bytes, needed_mb: int
) -> None:
    with make_client(model_path, tmp_path, max_decoded_bytes=8_000_000) as c:
        refused = c.post("/v1/classify", files=files(data))
        stored = c.post("/v1/submissions", files=files(data))
    for r in (refused, stored):
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "decoded_too_large"
        assert f"{needed_mb} MB" in r.json()["error"]["message"] and "8 MB" in r.json()["error"]["message"]
    with make_client(model_path, tmp_path / "big", max_decoded_bytes=needed_mb * 1_000_000 + 1) as c:
        assert c.post("/v1/classify", files=files(data)).status_code == 200  # within the budget: handled


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (encode(Image_from(np.zeros((480, 640, 3), np.uint8)), "JPEG"), "blank"),
        (encode(gradient((1024, 768)), "JPEG", quality=85), "blank"),
        (encode(photo((1, 1)), "PNG"), "too_small"),
    ],
    ids=["black", "gradient", "one_pixel"],
)
def test_blank_and_tiny_photos_never_reach_the_model(
    model_path: Path, tmp_path: Path, image: bytes, code: str
) -> None:
    with make_client(model_path, tmp_path) as c:
        app: Any = c.app
        app.state.engine = BrokenEngine(app.state.engine)  # any call of the model would be a 500
        answers = [c.post("/v1/classify", files=files(image)), c.post("/v1/submissions", files=files(image))]
        assert app.state.store.list_submissions()[1] == 0
    for r in answers:
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == code and r.json()["error"]["message"].startswith("image[0]: ")
        assert "send a photo" in r.json()["error"]["message"]


def test_a_second_photo_in_a_submission_is_refused_before_its_body_arrives(
    model_path: Path, tmp_path: Path
) -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    chunks = [part + jpeg() + b"\r\n" + part] + [b"\xff" * 1_000_000] * 20
    sent: list[int] = []
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(sent) == len(chunks):
            return {"type": "http.request", "body": b"", "more_body": False}
        sent.append(1)
        return {"type": "http.request", "body": chunks[len(sent) - 1], "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/submissions",
        "raw_path": b"/v1/submissions",
        "query_string": b"",
        "headers": [(b"content-type", MULTIPART_B["content-type"].encode())],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "root_path": "",
    }
    with make_client(model_path, tmp_path) as c:
        asyncio.run(c.app(scope, receive, send))  # type: ignore[arg-type]
    assert answer[0]["status"] == 413
    assert b"too_many_files" in answer[1]["body"] and b"exactly one photo" in answer[1]["body"]
    assert len(sent) == 1  # none of the second photo's 20 MB was received


def test_too_long_notes_are_called_too_long(client: TestClient) -> None:
    for note, limit in (("n" * 2_500, "2,000"), ("n" * 20_000, "8,000")):
        r = client.post("/v1/submissions", files=files(jpeg()), data={"note": note})
        error = r.json()["error"]
        assert r.status_code == 422 and error["code"] == "field_too_long", r.text
        assert "note" in error["message"] and "too long" in error["message"] and limit in error["message"]
        assert "photo" not in error["message"]


def test_classify_is_rate_limited_per_client(model_path: Path, tmp_path: Path) -> None:
    with make_client(model_path, tmp_path, classify_per_minute=2) as c:
        codes = [c.post("/v1/classify", files=files(jpeg())).status_code for _ in range(3)]
        limited = c.post("/v1/classify", files=files(jpeg()))
    assert codes == [200, 200, 429]
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert "2 a minute" in limited.json()["error"]["message"]
