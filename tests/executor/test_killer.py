"""The kill engine, each branch against a recording target and a fake clock
(as supervisor's tests do for each kill state): milliseconds, no processes."""

from __future__ import annotations

import asyncio
from typing import Any

import psutil
import pytest

from worker.executor.killer import KILL_SETTLE, Clock, KillTarget, MembersUnknown, kill_all


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        self.t += max(seconds, 1e-6)
        await asyncio.sleep(0)


class FakeProcess:
    """Enough of psutil.Process for ``alive``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.dead = False

    def is_running(self) -> bool:
        return not self.dead

    def status(self) -> str:
        return psutil.STATUS_SLEEPING


class Target(KillTarget):
    """Processes that obey TERM after ``term_after`` seconds (never, if None)
    and KILL at once; ``unknown_until`` makes ``members`` fail until then."""

    def __init__(
        self,
        clock: FakeClock,
        count: int = 2,
        term_after: float | None = 0.0,
        unknown_until: float = 0.0,
        unknown_forever: bool = False,
    ) -> None:
        self.clock = clock
        self.processes = [FakeProcess(100 + i) for i in range(count)]
        self.term_after = term_after
        self.unknown_until = unknown_until
        self.unknown_forever = unknown_forever
        self.calls: list[tuple[str, float]] = []
        self.termed_at: float | None = None

    def members(self) -> set[Any]:
        now = self.clock.now()
        if self.unknown_forever or now < self.unknown_until:
            raise MembersUnknown("out of descriptors")
        termed, after = self.termed_at, self.term_after
        if termed is not None and after is not None and now - termed >= after:
            for process in self.processes:
                process.dead = True
        return {p for p in self.processes if not p.dead}

    async def terminate(self) -> None:
        self.calls.append(("term", self.clock.now()))
        self.termed_at = self.clock.now()

    def force(self) -> None:
        self.calls.append(("kill", self.clock.now()))
        for process in self.processes:
            process.dead = True

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def run(target: Target, grace: float, **kwargs: Any) -> bool:
    return asyncio.run(kill_all(target, grace, clock=target.clock, **kwargs))


def test_nothing_to_kill_is_gone_after_one_term() -> None:
    target = Target(FakeClock(), count=0)
    assert run(target, grace=5.0)
    assert target.kinds() == ["term"]


def test_processes_that_obey_term_within_the_grace_get_no_kill() -> None:
    clock = FakeClock()
    target = Target(clock, term_after=0.3)
    start = clock.now()
    assert run(target, grace=5.0)
    assert target.kinds() == ["term"]
    assert 0.3 <= clock.now() - start < 0.5  # seen soon after they went


def test_processes_that_ignore_term_are_killed_when_the_grace_ends() -> None:
    clock = FakeClock()
    target = Target(clock, term_after=None)
    start = clock.now()
    assert run(target, grace=2.0)
    assert target.kinds() == ["term", "kill"]
    kill_time = target.calls[1][1]
    assert kill_time - start == pytest.approx(2.0, abs=0.06)


def test_already_terminated_sends_no_second_term() -> None:
    target = Target(FakeClock(), term_after=None)
    target.termed_at = target.clock.now()
    assert run(target, grace=1.0, already_terminated=True)
    assert target.kinds() == ["kill"]


def test_members_unknown_is_never_taken_for_gone() -> None:
    clock = FakeClock()
    # TERM works at once, but for a while nobody can tell: no early success.
    target = Target(clock, term_after=0.0, unknown_until=clock.now() + 1.0)
    start = clock.now()
    assert run(target, grace=3.0)
    assert clock.now() - start >= 1.0
    assert target.kinds() == ["term"]


def test_members_unknown_past_the_grace_leads_to_kill_then_failure() -> None:
    clock = FakeClock()
    target = Target(clock, unknown_forever=True)
    start = clock.now()
    assert not run(target, grace=1.0)
    kinds = target.kinds()
    assert kinds[0] == "term" and kinds[1] == "kill"
    # KILL is repeated while unsure, until the settle time runs out.
    assert kinds.count("kill") > 2
    assert clock.now() - start == pytest.approx(1.0 + KILL_SETTLE, abs=0.1)


def test_a_process_forked_during_the_grace_is_killed_too() -> None:
    clock = FakeClock()
    target = Target(clock, term_after=None)

    original = target.members

    def members_with_a_newcomer() -> set[Any]:
        if clock.now() - 1000.0 > 0.5 and len(target.processes) == 2:
            target.processes.append(FakeProcess(999))  # born after the TERM
        return original()

    target.members = members_with_a_newcomer  # type: ignore[method-assign]
    assert run(target, grace=1.0)
    assert all(process.dead for process in target.processes)
    assert len(target.processes) == 3


def test_polls_ask_whether_any_is_left_not_who() -> None:
    """A target that can tell emptiness cheaply (a cgroup's populated flag)
    is never asked to list its members while the engine waits."""
    clock = FakeClock()

    class Counting(Target):
        listed = 0

        def members(self) -> set[Any]:
            Counting.listed += 1
            return super().members()

        def left(self) -> bool:
            return any(not p.dead for p in self.processes) and clock.now() - 1000.0 < 0.01

    target = Counting(clock, term_after=None)
    assert run(target, grace=1.0)
    assert target.kinds() == ["term"]
    assert Counting.listed == 0
