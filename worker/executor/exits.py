"""Noticing that a job's main process has exited, without a thread per job.

Linux 5.3+ gives a pollable pidfd per process. Where ``pidfd_open`` is
missing or refused (old kernels, some seccomp profiles), SIGCHLD wakes a scan
of the running jobs instead. Either way the callback then reaps the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable


class ExitWatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pidfds: dict[int, int] = {}
        self._scanned: dict[int, Callable[[], None]] = {}
        self._sigchld_installed = False

    def watch(self, pid: int, on_exit: Callable[[], None]) -> None:
        """Call ``on_exit`` (at least once) after ``pid`` has exited."""
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._watch_by_sigchld(pid, on_exit)
            return
        self._pidfds[pid] = fd
        self._loop.add_reader(fd, on_exit)

    def unwatch(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self._loop.remove_reader(fd)
            os.close(fd)
        self._scanned.pop(pid, None)

    def _watch_by_sigchld(self, pid: int, on_exit: Callable[[], None]) -> None:
        if not self._sigchld_installed:
            self._loop.add_signal_handler(signal.SIGCHLD, self._scan)
            self._sigchld_installed = True
        self._scanned[pid] = on_exit
        # The child may have exited before the handler was in place.
        self._loop.call_soon(on_exit)

    def _scan(self) -> None:
        for on_exit in list(self._scanned.values()):
            on_exit()

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.unwatch(pid)
        if self._sigchld_installed:
            self._loop.remove_signal_handler(signal.SIGCHLD)
