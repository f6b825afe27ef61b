"""Per-request bookkeeping: request ids, one structured log line, Prometheus metrics, body limits.

Both middlewares are plain ASGI (no ``BaseHTTPMiddleware``), so streaming uploads pass through
untouched. Metrics live in a per-app :class:`CollectorRegistry`, never the global one, so several
apps (tests, workers) never collide.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.errors import error_body

__all__ = ["BodyLimitMiddleware", "Metrics", "RequestLogMiddleware", "annotate"]

log = logging.getLogger("camid.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LOG_KEY = "camid.log"


class Metrics:
    """The service's Prometheus metrics, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "camid_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "camid_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.errors = Counter(
            "camid_errors", "error responses by error code", ["code"], registry=self.registry
        )
        self.decisions = Counter(
            "camid_decisions",
            "classified photos by label and decision",
            ["label", "decision"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "camid_inference_pending", "inference jobs running or waiting", registry=self.registry
        )

    def observe_results(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Count the label and decision of each classification result."""
        for result in results:
            self.decisions.labels(str(result["label"]), str(result["decision"])).inc()


def annotate(scope: Scope, **fields: Any) -> None:
    """Add fields to this request's access-log line (sizes, labels, decisions; never bytes or names)."""
    scope.setdefault(_LOG_KEY, {}).update(fields)


def _json_response_messages(status: int, code: str, message: str) -> list[Message]:
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.append((b"x-error-code", code.encode()))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


def _content_length(scope: Scope) -> int | None:
    value = dict(scope["headers"]).get(b"content-length", b"")
    return int(value) if value.isdigit() else None


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes``: at once from Content-Length, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status, code = (413, "too_large") if declared.isdigit() else (400, "bad_request")
            for message in _json_response_messages(
                status, code, f"request body over {self.max_bytes:,} bytes"
            ):
                await send(message)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"request body over {self.max_bytes:,} bytes; send fewer photos")
            return message

        await self.app(scope, limited_receive, send)


class RequestLogMiddleware:
    """Request id (``X-Request-ID`` echoed or generated), metrics and one JSON log line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        fields: dict[str, Any] = {}
        scope[_LOG_KEY] = fields
        state: dict[str, Any] = {"status": 500, "bytes_out": 0, "error": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                state["error"] = dict(headers).get(b"x-error-code")
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                state["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, state, fields, time.perf_counter() - start)

    def _record(
        self, scope: Scope, request_id: str, state: dict[str, Any], fields: dict[str, Any], seconds: float
    ) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        status = int(state["status"])
        self.metrics.requests.labels(scope["method"], route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        if state["error"]:
            self.metrics.errors.labels(state["error"].decode("latin-1")).inc()
        line = {
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "status": status,
            "bytes_in": _content_length(scope),
            "bytes_out": state["bytes_out"],
            "ms": round(seconds * 1000, 1),
            **fields,
        }
        if state["error"]:
            line["error"] = state["error"].decode("latin-1")
        log.info(json.dumps(line, default=str))
