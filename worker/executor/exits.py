"""Noticing that processes exited and reaping them, without a thread per job.

When the executor is a child subreaper (``adopt_orphans``), orphans of jobs
are reparented to it; then SIGCHLD reaps every child, handing job leaders to
their callbacks, so none is left a zombie and no descriptor is spent per job.
Otherwise (a process that does not own all its children, such as a test),
job leaders are watched through pidfds (Linux 5.3+), or, where
``pidfd_open`` is missing, SIGCHLD wakes a scan of the watched processes.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
from collections import OrderedDict
from collections.abc import Callable

from worker.linux import reap_exited

# Exit statuses of children reaped before anyone watched them, kept for a
# while: a job's leader can exit before the spawner's reply with its PID has
# reached the executor (orphans of jobs are the rest, and nobody asks).
MAX_UNCLAIMED = 4096


class ChildReaper:
    def __init__(self, loop: asyncio.AbstractEventLoop, adopt_orphans: bool = False) -> None:
        self._loop = loop
        self._adopt_orphans = adopt_orphans
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._pidfds: dict[int, int] = {}
        self._borrowed: set[int] = set()  # pidfds the caller owns
        self._sigchld = False
        self._unclaimed: OrderedDict[int, int] = OrderedDict()  # pid -> wait status
        if adopt_orphans:
            self._install_sigchld()

    def watch(self, pid: int, on_exit: Callable[[], None], pidfd: int | None = None) -> None:
        """Call ``on_exit`` once ``pid`` has exited; it must reap ``pid``.
        ``pidfd``: one the caller holds for it (and keeps: it is not closed
        here)."""
        self._callbacks[pid] = on_exit
        if self._adopt_orphans:
            # SIGCHLD reaps every child already; no descriptor needed. One
            # that ended before this watch was reaped unclaimed: its end is
            # told now, if it really is this process's (PIDs get reused).
            if pid in self._unclaimed:
                if pidfd is not None and not _exited(pidfd):
                    del self._unclaimed[pid]  # another process's, long ago
                else:
                    self._loop.call_soon(on_exit)
            return
        if pidfd is not None:
            self._borrowed.add(pid)
            self._pidfds[pid] = pidfd
            self._loop.add_reader(pidfd, on_exit)
            return
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._install_sigchld()
            # The child may have exited before the handler was in place.
            self._loop.call_soon(self._on_sigchld)
            return
        self._pidfds[pid] = fd
        self._loop.add_reader(fd, on_exit)

    def unwatch(self, pid: int) -> None:
        self._callbacks.pop(pid, None)
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self._loop.remove_reader(fd)
            if pid not in self._borrowed:
                os.close(fd)
        self._borrowed.discard(pid)

    def _install_sigchld(self) -> None:
        if not self._sigchld:
            self._loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
            self._sigchld = True

    def _on_sigchld(self) -> None:
        if self._adopt_orphans:
            reap_exited(self._claim)
            return
        for pid in [p for p in self._callbacks if p not in self._pidfds]:
            callback = self._callbacks.get(pid)
            if callback is not None:
                callback()

    def reaped_unwatched(self, pid: int, pidfd: int) -> bool:
        """Whether the child ``pid`` (the process behind ``pidfd``) has ended
        and been reaped before anyone watched it: its PID may be another
        process's by now."""
        return pid in self._unclaimed and _exited(pidfd)

    def reaped(self, pid: int) -> int | None:
        """The wait status of ``pid`` if it was reaped before it was
        watched (once: it is forgotten then)."""
        return self._unclaimed.pop(pid, None)

    def _claim(self, pid: int) -> bool | None:
        callback = self._callbacks.get(pid)
        if callback is None:
            # An adopted orphan, or a leader not watched yet: reaped, and its
            # status kept for a watch that may come.
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return True
            if reaped:
                self._unclaimed[pid] = status
                self._unclaimed.move_to_end(pid)
                while len(self._unclaimed) > MAX_UNCLAIMED:
                    self._unclaimed.popitem(last=False)
            return bool(reaped)
        callback()  # reaps the leader through its Popen, keeping its status
        return pid not in self._callbacks

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.unwatch(pid)
        if self._sigchld:
            self._loop.remove_signal_handler(signal.SIGCHLD)
            self._sigchld = False


def _exited(pidfd: int) -> bool:
    """Whether the process behind ``pidfd`` has exited (it reads ready then).
    poll, not select: select refuses descriptors from 1024 on, which a
    server with a few hundred jobs running has."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))  # POLLNVAL too: no usable pidfd, long gone
