"""Back-off after repeated failed logins, per (source, username).

A few failures are free (typos). After that each failure makes the key wait
before its next bcrypt check, twice as long each time up to a cap, so a
password-guessing flood gets about one guess per ``cap`` seconds per key and
is otherwise refused before any bcrypt work. A success clears the key, and a
key is forgotten ``forget_after`` seconds after its last failure.

The key includes the source (the caller's Unix uid, see gate.py) so that an
attacker's failures put only the attacker's own attempts on that username in
back-off, never the same username from another uid. The table is bounded: past
``max_keys`` the key with the oldest failure is dropped, which at worst gives
its owner (most likely the attacker who made so many keys) a fresh start.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0
FORGET_AFTER = 900.0
MAX_KEYS = 10_000


@dataclass(slots=True)
class _Failures:
    count: int
    last: float  # when the latest failure happened
    until: float  # no check before this


class Backoff:
    def __init__(
        self,
        *,
        free: int = FREE_FAILURES,
        first_wait: float = FIRST_WAIT,
        longest_wait: float = LONGEST_WAIT,
        forget_after: float = FORGET_AFTER,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free
        self._first = first_wait
        self._longest = longest_wait
        self._forget_after = forget_after
        self._max = max_keys
        self._clock = clock
        # Ordered by latest failure, oldest first.
        self._keys: OrderedDict[Hashable, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def remaining(self, key: Hashable) -> float:
        """Seconds ``key`` must still wait before a check; 0 if it may go."""
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        now = self._clock()
        if now - entry.last >= self._forget_after:
            del self._keys[key]
            return 0.0
        return max(0.0, entry.until - now)

    def failures(self, key: Hashable) -> int:
        """Failures of ``key`` not yet forgotten."""
        self.remaining(key)  # forgets it if it is due
        entry = self._keys.get(key)
        return 0 if entry is None else entry.count

    def failed(self, key: Hashable) -> None:
        now = self._clock()
        self._forget_old(now)
        entry = self._keys.pop(key, None)
        count = 1 if entry is None else entry.count + 1
        over = count - self._free
        # Capping the exponent first keeps 2**n from growing without end.
        wait = 0.0 if over <= 0 else min(self._longest, self._first * 2 ** min(over - 1, 32))
        until = max(now + wait, entry.until if entry else now)
        self._keys[key] = _Failures(count, now, until)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)

    def succeeded(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def _forget_old(self, now: float) -> None:
        while self._keys:
            oldest = next(iter(self._keys.values()))
            if now - oldest.last < self._forget_after:
                return
            self._keys.popitem(last=False)
