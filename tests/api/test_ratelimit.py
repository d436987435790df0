from __future__ import annotations

import pytest

from worker.api.ratelimit import RateLimiter
from worker.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_requests_must_be_spaced_per_user() -> None:
    clock = Clock()
    limiter = RateLimiter(100, clock=clock)
    limiter.admit("alice")
    limiter.admit("bob")  # another user has an allowance of their own
    clock.now += 0.030
    with pytest.raises(RateLimited) as caught:
        limiter.admit("alice")
    assert caught.value.retry_after_ms == 70
    assert caught.value.http_status == 429
    clock.now += 0.071
    limiter.admit("alice")


def test_refused_requests_do_not_push_the_wait_further() -> None:
    clock = Clock()
    limiter = RateLimiter(100, clock=clock)
    limiter.admit("alice")
    for _ in range(5):
        clock.now += 0.010
        with pytest.raises(RateLimited):
            limiter.admit("alice")
    clock.now += 0.051  # 100 ms after the admitted one, not after the refused ones
    limiter.admit("alice")


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(0, clock=Clock())
    for _ in range(100):
        limiter.admit("alice")
