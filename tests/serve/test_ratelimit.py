"""The per-client token bucket behind the submissions rate limit."""

from __future__ import annotations

from serve.ratelimit import RateLimiter


def test_bucket_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(6)] == [None] * 6
    assert limiter.retry_after("a") == 10  # one token every 10 s
    assert limiter.retry_after("b") is None  # other clients are not affected
    now[0] = 10.0
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("a") == 10


def test_idle_clients_are_forgotten() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, clock=lambda: now[0], max_clients=3)
    for key in "abc":
        limiter.acquire(key)
    now[0] = 120.0
    limiter.acquire("d")
    assert len(limiter._buckets) == 1
