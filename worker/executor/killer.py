"""Killing a job's whole process tree: SIGTERM, a grace period, then SIGKILL.

Processes are tracked as ``psutil.Process`` objects, which remember each
process's start time and refuse to signal a PID that has since been reused.
The group signal is sent only while the job's leader is unreaped, because
until then its PID (and so the group ID) cannot belong to anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable

import psutil

POLL_INTERVAL = 0.02
# After SIGKILL the kernel needs a moment to tear processes down; waiting
# longer than this means something is stuck in the kernel (uninterruptible I/O).
KILL_SETTLE = 5.0


def tree(root: psutil.Process) -> set[psutil.Process]:
    """The root and every descendant still alive."""
    members = {root}
    with contextlib.suppress(psutil.Error):
        members.update(root.children(recursive=True))
    return {p for p in members if _alive(p)}


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_all(processes: Iterable[psutil.Process], sig: int, group: int | None) -> None:
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


async def kill_tree(
    root: psutil.Process,
    grace: float,
    group_id: Callable[[], int | None],
) -> None:
    """Terminate ``root`` and its descendants; return once none is left.

    ``group_id`` returns the job's process group while it is still safe to
    signal it (the leader is unreaped), else ``None``.
    """
    members = tree(root)
    _signal_all(members, signal.SIGTERM, group_id())
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        # Children forked during the grace period join the tree as we see them.
        members = {p for p in members if _alive(p)} | tree(root)
        if not members:
            return
        await asyncio.sleep(POLL_INTERVAL)
    members = {p for p in members if _alive(p)} | tree(root)
    _signal_all(members, signal.SIGKILL, group_id())
    deadline = time.monotonic() + KILL_SETTLE
    while members and time.monotonic() < deadline:
        await asyncio.sleep(POLL_INTERVAL)
        members = {p for p in members if _alive(p)}
