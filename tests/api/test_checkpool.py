"""bcrypt checks on worker threads, in the fair queue's order, with rests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from worker.api.backoff import Backoff
from worker.api.checkpool import CheckPool, default_workers
from worker.api.fairqueue import FairQueue

DEADLINE = 10.0


class Gate:
    """Checks that block until the test lets them end, and record who started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.threads: list[str] = []
        self._release: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def check(self, label: str, result: bool = False) -> Callable[[], bool]:
        release = self._release.setdefault(label, threading.Event())

        def run() -> bool:
            with self._lock:
                self.started.append(label)
                self.threads.append(threading.current_thread().name)
            assert release.wait(DEADLINE)
            return result

        return run

    def release(self, label: str) -> None:
        self._release.setdefault(label, threading.Event()).set()

    async def wait_started(self, *labels: str) -> None:
        async with asyncio.timeout(DEADLINE):
            while not set(labels) <= set(self.started):
                await asyncio.sleep(0.001)


def never_rest() -> Backoff:
    return Backoff(free=10**6)


def test_at_least_two_workers() -> None:
    assert default_workers() >= 2


def test_a_source_runs_one_check_at_a_time_and_a_newcomer_starts_at_once() -> None:
    gate = Gate()

    async def main() -> None:
        pool = CheckPool(workers=2, rest=never_rest())
        try:
            flood = [pool.submit("attacker", f"name{n}", gate.check(f"a{n}")) for n in range(3)]
            await gate.wait_started("a0")
            victim = pool.submit("victim", "carol", gate.check("v", True))
            assert victim is not None
            await gate.wait_started("v")
            assert gate.started == ["a0", "v"]  # a second worker was free, but not for a1
            gate.release("v")
            assert await asyncio.wait_for(victim, DEADLINE) is True
            for n in range(3):
                gate.release(f"a{n}")
            results = await asyncio.wait_for(asyncio.gather(*flood), DEADLINE)  # type: ignore[arg-type]
            assert results == [False] * 3
            assert gate.started == ["a0", "v", "a1", "a2"]
        finally:
            pool.close()

    asyncio.run(main())
    # bcrypt's stand-in ran on the pool's threads, never on the event loop's.
    assert all(name.startswith("bcrypt") for name in gate.threads)


def test_after_a_failure_the_source_rests_while_others_go_on() -> None:
    gate = Gate()

    async def main() -> None:
        long_rest = Backoff(free=0, first_wait=3600, longest_wait=3600)
        pool = CheckPool(workers=1, rest=long_rest)
        try:
            first = pool.submit("attacker", "alice", gate.check("a0"))
            second = pool.submit("attacker", "alice", gate.check("a1"))
            await gate.wait_started("a0")
            gate.release("a0")
            assert await asyncio.wait_for(first, DEADLINE) is False  # type: ignore[arg-type]
            # The only worker is free, yet a1 waits: its source is resting.
            other = pool.submit("bob's uid", "bob", gate.check("b", True))
            gate.release("b")
            assert await asyncio.wait_for(other, DEADLINE) is True  # type: ignore[arg-type]
            assert gate.started == ["a0", "b"]
            assert second is not None and not second.done()
            assert pool.waiting == 1
        finally:
            gate.release("a1")
            pool.close()

    asyncio.run(main())


def test_a_success_does_not_rest() -> None:
    gate = Gate()

    async def main() -> None:
        pool = CheckPool(workers=1, rest=Backoff(free=0, first_wait=3600))
        try:
            checks = [pool.submit("uid", "alice", gate.check(f"c{n}", True)) for n in range(2)]
            for n in range(2):
                gate.release(f"c{n}")
            assert await asyncio.wait_for(asyncio.gather(*checks), DEADLINE) == [True, True]  # type: ignore[arg-type]
        finally:
            pool.close()

    asyncio.run(main())


def test_a_full_queue_refuses() -> None:
    gate = Gate()

    async def main() -> None:
        queue: FairQueue[object] = FairQueue(per_name=1, per_source=2, total=10)
        pool = CheckPool(workers=1, queue=queue, rest=never_rest())  # type: ignore[arg-type]
        try:
            running = pool.submit("a", "alice", gate.check("running"))
            await gate.wait_started("running")
            assert pool.submit("a", "alice", gate.check("w1")) is not None
            assert pool.submit("a", "alice", gate.check("w2")) is None  # one per name
            assert pool.submit("a", "bob", gate.check("w3")) is not None
            assert pool.submit("a", "carol", gate.check("w4")) is None  # two per source
            assert pool.submit("b", "alice", gate.check("w5")) is not None
        finally:
            for label in ("running", "w1", "w2", "w3", "w4", "w5"):
                gate.release(label)
            assert running is not None
            await asyncio.wait_for(running, DEADLINE)
            pool.close()

    asyncio.run(main())


def test_an_error_in_a_check_reaches_its_waiter_and_frees_the_worker() -> None:
    def broken() -> bool:
        raise ValueError("bad hash")

    async def main() -> None:
        pool = CheckPool(workers=1, rest=never_rest())
        try:
            failing = pool.submit("a", "alice", broken)
            assert failing is not None
            with pytest.raises(ValueError, match="bad hash"):
                await asyncio.wait_for(failing, DEADLINE)
            after = pool.submit("b", "bob", lambda: True)
            assert after is not None and await asyncio.wait_for(after, DEADLINE) is True
        finally:
            pool.close()

    asyncio.run(main())
