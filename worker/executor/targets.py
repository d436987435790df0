"""Which processes belong to a job, and how to signal them all.

``CgroupTarget`` is exact: the job's cgroup holds everything it started.
``TreeTarget`` is the fallback where cgroups cannot be used: a process is the
job's if it descends from the job's leader or from a process already known
to be the job's, is in the job's session while the leader is unreaped (after
that the session ID could be reused), or carries the job's ``WORKER_JOB_ID``
in its environment. The executor is a child subreaper, so orphans stay among
its children, where ``candidates`` finds them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable

import psutil

from worker.executor.cgroups import JobCgroup
from worker.executor.killer import KillTarget, MembersUnknown, alive, signal_each

JOB_ID_VARIABLE = "WORKER_JOB_ID"

Group = Callable[[], int | None]


def process_of(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.Error, OSError):
        return None


def _killpg(group: int | None, sig: int) -> None:
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)


class CgroupTarget:
    def __init__(self, cgroup: JobCgroup, group: Group) -> None:
        """``group`` gives the job's process group while it is safe to signal
        as a whole (its leader unreaped, so the ID cannot have been reused)."""
        self.cgroup = cgroup
        self._group = group
        self._known: set[psutil.Process] = set()

    def members(self) -> set[psutil.Process]:
        try:
            pids = self.cgroup.pids()
        except OSError as exc:  # out of descriptors, say: not "empty"
            raise MembersUnknown(str(exc)) from exc
        found = (process_of(pid) for pid in pids)
        self._known = {p for p in found if p is not None}
        return set(self._known)

    def terminate(self) -> None:
        # The group first, at once (the usual case: everything is in it);
        # then, frozen, whatever of the cgroup left the group.
        _killpg(self._group(), signal.SIGTERM)
        try:
            self.cgroup.signal_all(signal.SIGTERM)
        except OSError:
            self._fallback(signal.SIGTERM)

    def force(self) -> None:
        try:
            self.cgroup.kill()
        except OSError:
            self._fallback(signal.SIGKILL)

    def _fallback(self, sig: int) -> None:
        _killpg(self._group(), sig)
        signal_each({p for p in self._known if alive(p)}, sig)


class TreeTarget:
    def __init__(
        self,
        job_id: int,
        leader: psutil.Process,
        candidates: Callable[[], list[psutil.Process]],
        group: Group,
    ) -> None:
        self._marker = str(job_id)
        self._leader = leader
        self._session = leader.pid  # a new session: the leader's PID is its ID
        self._candidates = candidates
        self._group = group
        self._known: set[psutil.Process] = set()
        self._marked: dict[tuple[int, float], bool] = {}

    def members(self) -> set[psutil.Process]:
        found = {p for p in self._known if alive(p)}
        if alive(self._leader):
            found.add(self._leader)
        session_safe = self._group() is not None
        for process in self._candidates():
            if process in found:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if (
                    session_safe and os.getsid(process.pid) == self._session
                ) or self._carries_marker(process):
                    found.add(process)
        for process in list(found):
            with contextlib.suppress(psutil.Error, OSError):
                found.update(p for p in process.children(recursive=True) if alive(p))
        self._known = found
        return set(found)

    def _carries_marker(self, process: psutil.Process) -> bool:
        key = (process.pid, process.create_time())
        if key not in self._marked:
            self._marked[key] = process.environ().get(JOB_ID_VARIABLE) == self._marker
        return self._marked[key]

    def _signal(self, sig: int) -> None:
        _killpg(self._group(), sig)
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
        return {p for p in children(self._executor, recursive=True) if alive(p)}

    def terminate(self) -> None:
        signal_each(self.members(), signal.SIGTERM)

    def force(self) -> None:
        if self._kill_tree is not None:
            self._kill_tree()
        signal_each(self.members(), signal.SIGKILL)


class UnionTarget:
    """Several kill targets as one."""

    def __init__(self, targets: Iterable[KillTarget]) -> None:
        self._targets = list(targets)

    def members(self) -> set[psutil.Process]:
        found: set[psutil.Process] = set()
        for target in self._targets:
            with contextlib.suppress(MembersUnknown):
                found.update(p for p in target.members() if alive(p))
        return found

    def terminate(self) -> None:
        for target in self._targets:
            target.terminate()

    def force(self) -> None:
        for target in self._targets:
            target.force()


def children(process: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
    try:
        return process.children(recursive=recursive)
    except (psutil.Error, OSError):
        return []
