"""Reading multipart uploads: bounds on parts, headers, speed and concurrent uploads per client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request

from serve.errors import ApiError
from serve.uploads import MultipartForm, UploadGate, UploadLimits, read_multipart

CTYPE = (b"content-type", b"multipart/form-data; boundary=b")
IMAGE_HEAD = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'


def request_of(
    chunks: Iterator[bytes], *, delay_s: float = 0.0, chunks_read: list[int] | None = None, end: bool = False
) -> Request:
    """An ASGI request whose body arrives as ``chunks``, ``delay_s`` apart; then it ends (``end``) or
    the client goes quiet."""

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(delay_s)
        chunk = next(chunks, None)
        if chunk is None and end:
            return {"type": "http.request", "body": b"", "more_body": False}
        if chunk is None:
            await asyncio.sleep(3600)
        if chunks_read is not None:
            chunks_read.append(1)
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": "POST", "headers": [CTYPE], "client": ("127.0.0.9", 1)}
    return Request(scope, receive)


def read(request: Request, **limits: Any) -> MultipartForm:
    return asyncio.run(read_multipart(request, limits=UploadLimits(**limits)))


def refused(request: Request, **limits: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        read(request, **limits)
    return caught.value


def test_a_million_empty_fields_are_refused_after_the_first_few() -> None:
    # 57 bytes per part, 10^6 parts = the 57 MB body of the issue, sent in 64 KiB chunks.
    part = b'--b\r\nContent-Disposition: form-data; name=""\r\n\r\n\r\n'
    body = part * 1_000_000 + b"--b--\r\n"
    read_so_far: list[int] = []
    chunks = iter([body[i : i + 65_536] for i in range(0, len(body), 65_536)])
    error = refused(request_of(chunks, chunks_read=read_so_far), max_fields=32)
    assert error.status == 422 and error.code == "too_many_fields"
    assert "32" in error.message
    assert len(read_so_far) == 1  # refused within the first chunk, not after parsing 57 MB


def test_fields_with_one_name_count_each_time() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'
    error = refused(request_of(iter([part * 5 + b"--b--\r\n"])), max_fields=4)
    assert error.code == "too_many_fields"


def test_a_part_with_endless_headers_is_refused() -> None:
    body = b"--b\r\n" + b"X-A: 1\r\n" * 100
    error = refused(request_of(iter([body])))
    assert error.status == 400 and error.code == "bad_multipart" and "header" in error.message


def test_an_overlong_header_line_is_refused() -> None:
    body = b"--b\r\nContent-Disposition: form-data; name=" + b"n" * 20_000
    error = refused(request_of(iter([body])))
    assert error.status == 400 and error.code == "bad_multipart" and "header" in error.message


def test_a_too_long_note_is_called_too_long() -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + b"n" * 20_000
    error = refused(request_of(iter([body])), max_field_bytes=16_384)
    assert error.code == "field_too_long"
    assert "note" in error.message and "too long" in error.message and "16,384" in error.message
    assert "photo" not in error.message


def test_a_second_photo_is_refused_before_its_body_is_read() -> None:
    second = b"\r\n" + IMAGE_HEAD  # the second file's headers, then its body would follow
    read_so_far: list[int] = []
    chunks = iter([IMAGE_HEAD + b"\xff" * 100 + second, b"\xff" * 1_000_000, b"\xff" * 1_000_000])
    error = refused(request_of(chunks, chunks_read=read_so_far), max_files=1)
    assert error.code == "too_many_files" and "exactly one photo" in error.message
    assert len(read_so_far) == 1  # the second photo's megabytes were never received


def test_an_upload_slower_than_the_minimum_rate_is_cut_after_the_grace_period() -> None:
    chunks = iter([IMAGE_HEAD] + [b"\xff"] * 10_000)  # then one byte every 20 ms: 50 bytes/s
    error = refused(request_of(chunks, delay_s=0.02), min_rate=1_000, grace_s=0.3, timeout_s=30.0)
    assert error.status == 408 and error.code == "upload_too_slow"
    assert "1,000 bytes/s" in error.message


def test_a_stalled_upload_is_cut_without_another_byte() -> None:
    error = refused(request_of(iter([IMAGE_HEAD])), min_rate=1_000, grace_s=0.2, timeout_s=30.0)
    assert error.status == 408 and error.code == "upload_too_slow"


def test_a_fast_upload_is_read_whole() -> None:
    body = IMAGE_HEAD + b"\xff" * 100 + b"\r\n--b--\r\n"
    form = read(request_of(iter([body]), end=True), min_rate=1_000, grace_s=1.0)
    assert form.files_in("image") == [b"\xff" * 100]


def test_gate_bounds_uploads_per_client() -> None:
    gate = UploadGate(per_client=2, max_buffered_bytes=1_000, retry_after_s=3)
    with gate.enter("a"), gate.enter("a"):
        with pytest.raises(ApiError) as caught, gate.enter("a"):
            pass
        assert caught.value.status == 429 and caught.value.code == "too_many_uploads"
        assert caught.value.headers["Retry-After"] == "3"
        with gate.enter("b"):  # other clients are not affected
            assert gate.active == 3
    assert gate.active == 0
    with gate.enter("a"):
        pass


def test_gate_bounds_the_bytes_held_by_all_uploads() -> None:
    gate = UploadGate(per_client=4, max_buffered_bytes=1_000, retry_after_s=2)
    with gate.enter("a") as first:
        first.take(800)
        with gate.enter("b") as second:
            with pytest.raises(ApiError) as caught:
                second.take(300)
            assert caught.value.status == 503 and caught.value.code == "overloaded"
    assert gate.buffered == 0


def test_read_multipart_counts_the_bytes_it_holds() -> None:
    gate = UploadGate(per_client=4, max_buffered_bytes=500, retry_after_s=2)
    body = IMAGE_HEAD + b"\xff" * 1000 + b"\r\n--b--\r\n"

    async def go() -> None:
        with gate.enter("a") as allowance:
            request = request_of(iter([body]), end=True)
            await read_multipart(request, limits=UploadLimits(), allowance=allowance)

    with pytest.raises(ApiError) as caught:
        asyncio.run(go())
    assert caught.value.status == 503
    assert gate.buffered == 0
