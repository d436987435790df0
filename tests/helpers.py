"""Waiting helpers every kind of test shares: whether a process is alive,
and waiting with a deadline (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psutil

T = TypeVar("T")


def alive(pid: int | psutil.Process) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        process = pid if isinstance(pid, psutil.Process) else psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """The first truthy value of ``predicate``; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(predicate, '__name__', '')}")
        time.sleep(interval)


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """Wait until none of ``pids`` is alive; those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]
