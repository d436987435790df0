"""Which processes belong to a job, and how to signal them all.

``CgroupTarget`` is exact: the job's cgroup holds everything it started.
``TreeTarget`` is the fallback where cgroups cannot be used: a process is the
job's if it descends from the job's leader, is still in the job's session, or
carries the job's ``WORKER_JOB_ID`` in its environment. The executor is a
child subreaper, so orphans stay among its descendants where we can look.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

import psutil

from worker.executor.cgroups import JobCgroup
from worker.executor.killer import alive, signal_each

JOB_ID_VARIABLE = "WORKER_JOB_ID"


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.Error, OSError):
        return None


class CgroupTarget:
    def __init__(self, cgroup: JobCgroup) -> None:
        self.cgroup = cgroup

    def members(self) -> set[psutil.Process]:
        found = (_process(pid) for pid in self.cgroup.pids())
        return {p for p in found if p is not None}

    def terminate(self) -> None:
        self.cgroup.signal_all(signal.SIGTERM)

    def force(self) -> None:
        self.cgroup.kill()


class TreeTarget:
    def __init__(
        self,
        job_id: int,
        leader: psutil.Process,
        executor: psutil.Process,
        group: Callable[[], int | None],
    ) -> None:
        """``group`` gives the job's process group while it is safe to signal
        as a whole (its leader unreaped, so the ID cannot have been reused)."""
        self._marker = f"{job_id}"
        self._leader = leader
        self._session = leader.pid  # a new session: the leader's PID is its ID
        self._executor = executor
        self._group = group
        self._known: set[psutil.Process] = set()

    def members(self) -> set[psutil.Process]:
        found: set[psutil.Process] = set()
        with contextlib.suppress(psutil.Error, OSError):
            if alive(self._leader):
                found.add(self._leader)
                found.update(self._leader.children(recursive=True))
        for process in descendants(self._executor):
            if process in found:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if (
                    os.getsid(process.pid) == self._session
                    or process.environ().get(JOB_ID_VARIABLE) == self._marker
                ):
                    found.add(process)
        # Once seen, a process stays a member even if it later hides.
        self._known = {p for p in self._known | found if alive(p)}
        return set(self._known)

    def _signal(self, sig: int) -> None:
        group = self._group()
        if group is not None:
            with contextlib.suppress(OSError):
                os.killpg(group, sig)
        signal_each(self.members(), sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def force(self) -> None:
        self._signal(signal.SIGKILL)


class EverythingTarget:
    """Every descendant of the executor (at shutdown, all of them are jobs'),
    and the whole cgroup tree where there is one."""

    def __init__(self, executor: psutil.Process, kill_tree: Callable[[], None] | None) -> None:
        self._executor = executor
        self._kill_tree = kill_tree

    def members(self) -> set[psutil.Process]:
        return {p for p in descendants(self._executor) if alive(p)}

    def terminate(self) -> None:
        signal_each(self.members(), signal.SIGTERM)

    def force(self) -> None:
        if self._kill_tree is not None:
            self._kill_tree()
        signal_each(self.members(), signal.SIGKILL)


def descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except (psutil.Error, OSError):
        return []
