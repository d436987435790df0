"""The one kill engine: SIGTERM, a grace period, then SIGKILL until gone.

A job's kill, the stop of what an ended job left behind, the executor's
shutdown, the supervisor's clean-up after a dead executor and the sweep of a
dead server's cgroups all run ``kill_all``; only the ``KillTarget`` differs
(a job's cgroup, its tree and session, every child of a process, a dead
server's cgroup tree). The target is asked for its members again on every
poll, so processes forked during the grace period are caught too. Members
are ``psutil.Process`` objects, which remember each process's start time and
refuse to signal a PID that has since been reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import psutil

POLL_INTERVAL = 0.05
FIRST_POLL = 0.0005
# After SIGKILL the kernel needs a moment to tear processes down; longer than
# this means something is stuck in the kernel (uninterruptible I/O).
KILL_SETTLE = 5.0


class MembersUnknown(Exception):
    """The members cannot be listed right now (not the same as: none left)."""


class KillTarget(Protocol):
    def members(self) -> set[psutil.Process]:
        """The processes still to be killed, zombies left out (they are
        gone, only unreaped); ``MembersUnknown`` if that cannot be known now."""

    def left(self) -> bool:
        """Whether anything is still to be killed; what the engine polls, so
        a target that can tell without listing (a cgroup's populated flag)
        says so here instead of building a ``psutil.Process`` per member."""
        return bool(self.members())

    def pause(self, seconds: float, clock: Clock) -> Awaitable[None]:
        """Wait before the next poll: ``seconds``, or less where the target
        can tell that something changed (a cgroup's events file)."""
        return clock.sleep(seconds)

    async def terminate(self) -> None:
        """SIGTERM to every member."""

    def force(self) -> None:
        """SIGKILL to every member."""


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def protected_pids() -> frozenset[int]:
    """This process and its parent: whatever a target lists, a signal meant
    for a job never reaches the server itself (the executor and the
    supervisor; the API is neither a job's child nor in a job's cgroup)."""
    return frozenset({os.getpid(), os.getppid()})


def signal_each(processes: Iterable[psutil.Process], sig: int) -> None:
    spared = protected_pids()
    for process in processes:
        if process.pid in spared:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            process.send_signal(sig)


class Clock:
    """Time as the engine sees it; tests replace it to run every branch in
    milliseconds."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)


async def _until_gone(target: KillTarget, seconds: float, force: bool, clock: Clock) -> bool:
    deadline = clock.now() + seconds
    # Most processes die within a few milliseconds of the signal: look again
    # soon, then less and less often.
    interval = FIRST_POLL
    while True:
        try:
            if not target.left():
                return True
        except MembersUnknown:
            pass  # can't tell: not gone
        if clock.now() >= deadline:
            return False
        if force:
            target.force()  # again: anything new since the last round
        await target.pause(min(interval, max(0.0, deadline - clock.now())), clock)
        interval = min(interval * 1.5, POLL_INTERVAL)


async def kill_all(
    target: KillTarget,
    grace: float,
    *,
    already_terminated: bool = False,
    clock: Clock | None = None,
) -> bool:
    """SIGTERM the target, wait up to ``grace`` for it to be gone, then
    SIGKILL until it is; False if something is still there ``KILL_SETTLE``
    seconds after SIGKILL (or its members could not be known)."""
    clock = clock or Clock()
    if not already_terminated:
        await target.terminate()
    if await _until_gone(target, grace, force=False, clock=clock):
        return True
    target.force()
    return await _until_gone(target, KILL_SETTLE, force=True, clock=clock)


def kill_all_now(target: KillTarget, grace: float, reap: Callable[[], None]) -> bool:
    """``kill_all`` for a caller without an event loop (the supervisor);
    ``reap`` runs on every poll so its zombie children do not pile up."""

    class Reaping(KillTarget):
        def members(self) -> set[psutil.Process]:
            reap()
            return target.members()

        def left(self) -> bool:
            reap()
            return target.left()

        def pause(self, seconds: float, clock: Clock) -> Awaitable[None]:
            return target.pause(seconds, clock)

        async def terminate(self) -> None:
            await target.terminate()

        def force(self) -> None:
            target.force()

    return asyncio.run(kill_all(Reaping(), grace))
