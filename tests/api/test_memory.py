"""The trimmer: trims through a burst of closed connections, collects once it is over."""

from __future__ import annotations

import asyncio

from worker.api import memory
from worker.api.memory import Trimmer


class Timers:
    """Enough of an event loop for the trimmer: call_later, run on demand."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[tuple[float, _Handle]] = []

    def call_later(self, delay: float, callback: object) -> _Handle:
        handle = _Handle(callback)
        self.pending.append((self.now + delay, handle))
        return handle

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.pending and min(when for when, _ in self.pending) <= end:
            when, handle = min(self.pending, key=lambda item: item[0])
            self.pending.remove((when, handle))
            self.now = when
            if not handle.cancelled:
                handle.callback()  # type: ignore[operator]
        self.now = end


class _Handle:
    def __init__(self, callback: object) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Recorder:
    def __init__(self) -> None:
        self.timers = Timers()
        self.trims: list[float] = []
        self.collections: list[float] = []
        loop: asyncio.AbstractEventLoop = self.timers  # type: ignore[assignment]
        self.trimmer = Trimmer(
            loop,
            trim=lambda: self.trims.append(self.timers.now),
            collect=lambda: self.collections.append(self.timers.now),
        )

    def close(self, count: int) -> None:
        for _ in range(count):
            self.trimmer.closed()


def test_a_few_closes_do_nothing() -> None:
    r = Recorder()
    r.close(memory.BURST - 1)
    r.timers.advance(100.0)
    assert r.trims == r.collections == []


def test_a_burst_collects_and_trims_once_shortly_after() -> None:
    r = Recorder()
    r.close(memory.BURST)
    r.timers.advance(memory.DELAY)
    assert r.trims == r.collections == [memory.DELAY]
    r.timers.advance(100.0)
    assert len(r.trims) == 1


def test_closes_that_go_on_past_the_first_look_are_waited_out() -> None:
    r = Recorder()
    r.close(memory.BURST * 3)
    r.timers.advance(memory.DELAY)
    assert (r.trims, r.collections) == ([memory.DELAY], [])
    r.timers.advance(memory.DELAY)
    assert r.trims == [memory.DELAY, 2 * memory.DELAY] and r.collections == [2 * memory.DELAY]


def test_a_flood_trims_each_delay_and_collects_only_once_it_ends() -> None:
    r = Recorder()
    for _ in range(50):  # ten seconds of a burst every fifth of the delay
        r.close(memory.BURST)
        r.timers.advance(memory.DELAY / 5)
    assert r.collections == []
    assert 9 <= len(r.trims) <= 10
    assert all(b - a >= memory.DELAY * 0.99 for a, b in zip(r.trims, r.trims[1:], strict=False))
    r.close(10)  # stragglers
    r.timers.advance(2 * memory.DELAY)
    assert len(r.collections) == 1 and r.collections[0] == r.trims[-1]
    r.timers.advance(100.0)
    assert len(r.collections) == 1


def test_cancel_drops_a_pending_look() -> None:
    r = Recorder()
    r.close(memory.BURST)
    r.trimmer.cancel()
    r.timers.advance(100.0)
    assert r.trims == []
