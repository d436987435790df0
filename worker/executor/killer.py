"""Killing a set of processes: SIGTERM, a grace period, then SIGKILL.

Which processes belong to a job is decided by the caller (``collect``), and
asked again on every poll, so children forked during the grace period are
caught too. Processes are ``psutil.Process`` objects, which remember each
process's start time and refuse to signal a PID that has since been reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

import psutil

POLL_INTERVAL = 0.05
# After SIGKILL the kernel needs a moment to tear processes down; longer than
# this means something is stuck in the kernel (uninterruptible I/O).
KILL_SETTLE = 5.0

Collect = Callable[[], set[psutil.Process]]


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def signal_all(processes: set[psutil.Process], sig: int, group: int | None = None) -> None:
    """Signal every process; ``group`` is a process group that is still safe to
    signal as a whole (its leader is unreaped, so the ID cannot be reused)."""
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)
    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            process.send_signal(sig)


async def kill_all(
    collect: Collect,
    grace: float,
    group: Callable[[], int | None] = lambda: None,
    already_terminated: bool = False,
) -> None:
    """Terminate what ``collect`` returns until nothing is left; return then."""
    members = {p for p in collect() if alive(p)}
    if not already_terminated:
        signal_all(members, signal.SIGTERM, group())
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        members = {p for p in members | collect() if alive(p)}
        if not members:
            return
        await asyncio.sleep(POLL_INTERVAL)
    deadline = time.monotonic() + KILL_SETTLE
    while time.monotonic() < deadline:
        members = {p for p in members | collect() if alive(p)}
        if not members:
            return
        signal_all(members, signal.SIGKILL, group())
        await asyncio.sleep(POLL_INTERVAL)
