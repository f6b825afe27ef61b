"""A slow-upload attack on a real uvicorn server: other clients keep getting answers.

Attackers connect from 127.0.0.2 and send a photo one byte a second, reconnecting when cut off;
normal clients connect from 127.0.0.3 (Linux routes all of 127/8 to the loopback interface).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve.app import create_app
from tests.serve.apptools import files, settings_for, wait_for
from tests.serve.hostile_corpus import jpeg

ATTACKER, CITIZEN = "127.0.0.2", "127.0.0.3"
PREAMBLE = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tiny_model: Any, tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """The app (default queue: 1 thread + 8 waiting) under uvicorn in a thread; yields (port, app)."""
    uvicorn = pytest.importorskip("uvicorn")
    settings = settings_for(
        tiny_model.onnx, tmp_path / "var", upload_grace_s=4.0, upload_min_rate=1_000, uploads_per_client=4
    )
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=60)
    assert server.started, "uvicorn did not start"
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def slow_upload(port: int, stop: threading.Event, statuses: list[int]) -> None:
    """Send a 1 MB upload one byte a second until the server answers; then reconnect, until ``stop``."""
    head = (
        f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(ATTACKER, 0)) as s:
            s.sendall(head + PREAMBLE)
            s.settimeout(1.0)
            while not stop.is_set():
                try:
                    answer = s.recv(4096)
                except TimeoutError:
                    try:
                        s.sendall(b"\x00")
                    except OSError:
                        break
                    continue
                if answer:
                    statuses.append(_status(answer))
                break
        stop.wait(0.2)


def test_slow_uploads_leave_the_service_to_everyone_else(server: tuple[int, Any]) -> None:
    port, app = server
    stop, attacked = threading.Event(), []
    attackers = [threading.Thread(target=slow_upload, args=(port, stop, attacked)) for _ in range(12)]
    for t in attackers:
        t.start()
    try:
        # 4 uploads in progress from the attacker's address (the per-client bound), 8 refused at once.
        wait_for(lambda: app.state.uploads.active == 4, timeout=30)
        citizen = httpx.HTTPTransport(local_address=CITIZEN)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", transport=citizen, timeout=60) as http:
            answers = [http.post("/v1/classify", files=files(jpeg(seed=i))) for i in range(6)]
            answers.append(http.post("/v1/submissions", files=files(jpeg(seed=9))))
            answers.append(http.get("/readyz"))
        # Cut off for being slower than 1,000 bytes/s after the 4 s grace: within a generous minute.
        wait_for(lambda: 408 in attacked, timeout=60)
    finally:
        stop.set()
        for t in attackers:
            t.join(15)
    assert [a.status_code for a in answers] == [200] * 6 + [201, 200], [a.text for a in answers]
    assert set(attacked) <= {408, 429} and 429 in attacked
