"""Ending a set of processes: SIGTERM, a grace period, then SIGKILL.

What the set is, and how to signal it as a whole, is the ``KillTarget``'s
business (a job's cgroup, or its tree and session). The target is asked for
its members again on every poll, so processes forked during the grace period
are caught too. Members are ``psutil.Process`` objects, which remember each
process's start time and refuse to signal a PID that has since been reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    def members(self) -> set[psutil.Process]: ...

    def terminate(self) -> None:
        """SIGTERM to every member."""

    def force(self) -> None:
        """SIGKILL to every member."""


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def signal_each(processes: set[psutil.Process], sig: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            process.send_signal(sig)


async def _until_gone(target: KillTarget, seconds: float, force: bool) -> bool:
    deadline = time.monotonic() + seconds
    # Most processes die within a few milliseconds of the signal: look again
    # soon, then less and less often.
    interval = FIRST_POLL
    while True:
        try:
            members = {p for p in target.members() if alive(p)}
        except MembersUnknown:
            members = None  # can't tell: not gone
        if members == set():
            return True
        if time.monotonic() >= deadline:
            return False
        if force:
            target.force()  # again: anything new since the last round
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, POLL_INTERVAL)


async def kill_all(target: KillTarget, grace: float, already_terminated: bool = False) -> bool:
    """Terminate the target until nothing is left; False if something is
    still there ``KILL_SETTLE`` seconds after SIGKILL."""
    if not already_terminated:
        target.terminate()
    if await _until_gone(target, grace, force=False):
        return True
    target.force()
    return await _until_gone(target, KILL_SETTLE, force=True)
