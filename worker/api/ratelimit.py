"""Requests of one user must be at least ``interval`` apart.

It is keyed by the *authenticated* user, so nobody can spend another user's
allowance without their password. A refused request does not count, so the
wait it is told is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from worker.errors import RateLimited


class RateLimiter:
    def __init__(self, interval_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_ms / 1000
        self._clock = clock
        self._last: dict[str, float] = {}

    def admit(self, user: str) -> None:
        if self._interval <= 0:
            return
        now = self._clock()
        last = self._last.get(user)
        if last is not None and now - last < self._interval:
            wait_ms = math.ceil((self._interval - (now - last)) * 1000)
            raise RateLimited(
                f"too many requests: wait {wait_ms} ms between requests", retry_after_ms=wait_ms
            )
        self._last[user] = now
