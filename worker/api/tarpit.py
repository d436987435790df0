"""Login refusals go out to each source at a bounded pace; the rest wait.

An HTTP client waits for each answer before it sends its next request on a
connection, so holding a refusal back holds that connection's next attempt
back too, and a held refusal costs the server nothing but a sleeping task.
Refusals to one source (one Unix uid, see gate.py) are let out ``rate`` a
second, each waiting its turn, and none waits more than ``longest``: a flood
from one uid is then answered, and so can go on, at about ``rate`` attempts a
second (or its connection count / ``longest``, whichever is more), whatever
it sends, which keeps the event loop free for everyone else. A client that is
refused now and then never waits: the first refusal in a while goes out at once.

Bounded: one small entry per source refused within the last ``longest``
seconds (at most ``max_sources``), and at most ``most_held`` refusals held at
once, beyond which they go out at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

RATE = 20.0
# Under the CLI's 30 s timeout, so that even a held refusal is an answer.
LONGEST_HOLD = 20.0
MAX_SOURCES = 10_000
MOST_HELD = 8192


class Tarpit:
    def __init__(
        self,
        *,
        rate: float = RATE,
        longest: float = LONGEST_HOLD,
        max_sources: int = MAX_SOURCES,
        most_held: int = MOST_HELD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1 / rate
        self._longest = longest
        self._max_sources = max_sources
        self._most_held = most_held
        self._clock = clock
        self._sleep = sleep
        # When each source's next refusal may go out; least recently set first.
        self._next: OrderedDict[Hashable, float] = OrderedDict()
        self.held = 0

    def __len__(self) -> int:
        return len(self._next)

    def delay(self, source: Hashable) -> float:
        """Take the next turn of ``source``: how long its refusal must wait."""
        now = self._clock()
        turn = max(now, self._next.pop(source, now))
        # Never booked further ahead than the longest hold: past it the
        # refusals of a huge flood all wait the longest, no more.
        self._next[source] = min(turn + self._interval, now + self._longest)
        while len(self._next) > 1:  # the source just booked is last: kept
            when = next(iter(self._next.values()))
            if when > now and len(self._next) <= self._max_sources:
                break
            self._next.popitem(last=False)
        return min(turn - now, self._longest)

    async def hold(self, source: Hashable) -> float:
        """Wait for ``source``'s turn; the seconds waited."""
        wait = self.delay(source)
        if wait <= 0 or self.held >= self._most_held:
            return 0.0
        self.held += 1
        try:
            await self._sleep(wait)
        finally:
            self.held -= 1
        return wait
