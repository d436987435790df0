"""Requests of one user must be at least ``interval`` apart.

It is keyed by the *authenticated* user, so nobody can spend another user's
allowance without their password. A refused request does not count, so the
wait it is told is exact. The spacing is measured from when a request is
admitted, and every reply tells its client the interval and how long from
now until that user's next request is admitted (``headers``), so a client
can space its requests without ever meeting a 429.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from worker.errors import RateLimited

log = logging.getLogger("worker.api")

INTERVAL_HEADER = "X-Rate-Limit-Interval-Ms"
WAIT_HEADER = "X-Rate-Limit-Wait-Ms"


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
            log.debug("rate limit: %s came %d ms too soon", user, wait_ms, extra={"user": user})
            raise RateLimited(
                f"too many requests: wait {wait_ms} ms between requests", retry_after_ms=wait_ms
            )
        self._last[user] = now

    def headers(self, user: str) -> dict[str, str]:
        """For a reply to ``user``: the interval, and the wait before their
        next request, from now (rounded up to a whole millisecond)."""
        if self._interval <= 0:
            return {}
        last = self._last.get(user)
        wait = 0.0 if last is None else max(0.0, self._interval - (self._clock() - last))
        return {
            INTERVAL_HEADER: str(round(self._interval * 1000)),
            WAIT_HEADER: str(math.ceil(wait * 1000)),
        }
