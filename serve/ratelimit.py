"""A per-client token bucket, in process: ``rate`` requests per minute with bursts of ``burst``.

One limiter per limited route and app (``app.state.rate_limiters``), so each replica limits on
its own; put a shared limiter in the reverse proxy when several replicas serve the public.
:func:`enforce_rate` is what the routes call (``/v1/classify``, ``/v1/submissions``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from serve.errors import ApiError

__all__ = ["RateLimiter", "client_address", "enforce_rate"]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by client (IP address); thread-safe."""

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._prune(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def retry_after(self, key: str) -> int | None:
        """Like :meth:`acquire`, but None when allowed and whole seconds (>= 1) when not."""
        wait = self.acquire(key)
        return None if wait <= 0 else max(1, math.ceil(wait))

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled (they are indistinguishable from new ones)."""
        if len(self._buckets) < self.max_clients:
            return
        full = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= full]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_clients:  # under attack: drop the oldest half
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].stamp)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]


def client_address(request: Request) -> str:
    """The key that per-client limits use: the client's IP address as the server sees it."""
    return request.client.host if request.client else "unknown"


def enforce_rate(request: Request, name: str, per_minute: int, what: str) -> None:
    """429 ``rate_limited`` with Retry-After when this client sent more than ``per_minute`` ``what``.

    ``name`` picks the limiter (one per route, created on first use in ``app.state``).
    """
    state = request.app.state
    limiters: dict[str, RateLimiter] | None = getattr(state, "rate_limiters", None)
    if limiters is None:
        limiters = state.rate_limiters = {}
    limiter = limiters.get(name)
    if limiter is None:
        limiter = limiters[name] = RateLimiter(per_minute)
    wait = limiter.retry_after(client_address(request))
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many {what} from your address (at most {per_minute} a minute); retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
