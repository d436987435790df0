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


def test_replies_say_the_interval_and_the_wait_from_admission() -> None:
    clock = Clock()
    limiter = RateLimiter(100, clock=clock)
    assert limiter.headers("alice") == {
        "X-Rate-Limit-Interval-Ms": "100",
        "X-Rate-Limit-Wait-Ms": "0",
    }
    limiter.admit("alice")
    clock.now += 0.030  # a slow reply: the wait counts from admission, not from now
    assert limiter.headers("alice")["X-Rate-Limit-Wait-Ms"] == "70"
    clock.now += 0.071  # told 70 ms, waited them and the client's 1 ms more: admitted
    limiter.admit("alice")


def test_no_headers_without_a_limit() -> None:
    assert RateLimiter(0).headers("alice") == {}
