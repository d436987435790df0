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
import errno
import functools
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable

import psutil

from worker.executor.cgroups import CgroupTree, JobCgroup
from worker.executor.changes import changed
from worker.executor.killer import (
    Clock,
    KillTarget,
    MembersUnknown,
    alive,
    protected_pids,
    signal_each,
)
from worker.linux import as_owner, direct_children

log = logging.getLogger("worker.executor")

JOB_ID_VARIABLE = "WORKER_JOB_ID"

Group = Callable[[], int | None]
# Sends a signal to the job's init (PID 1 of its namespace) through its pidfd;
# False once the init is reaped (the namespace went with it). The init passes
# every signal it can catch on to all other processes there with kill(-1),
# which the kernel does at once: no PID read, so none can be reused meanwhile.
ToInit = Callable[[int], bool]


def process_of(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.Error, OSError):
        return None


def through_pidfd(pidfd: int, reaped: Callable[[], bool]) -> ToInit:
    """A ``ToInit`` for the init behind ``pidfd``, while ``reaped()`` is false:
    until then the descriptor is open and still the init's (once closed, its
    number could be another job's pidfd)."""

    def send(sig: int) -> bool:
        if reaped():
            return False
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except OSError:
            return False
        return True

    return send


def _killpg(group: int | None, sig: int) -> None:
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)


class CgroupTarget(KillTarget):
    def __init__(
        self,
        cgroup: JobCgroup,
        group: Group,
        spare: int | None = None,
        to_init: ToInit | None = None,
    ) -> None:
        """``group`` gives the job's process group while it is safe to signal
        as a whole (its leader unreaped, so the ID cannot have been reused).
        ``spare``: the job's init (PID 1 of its namespace), which gets no
        signal of its own when the members get theirs: it would pass it on
        to every process once more; it ends by itself once they have, or
        with the rest on SIGKILL. ``to_init``: the way to it, so SIGTERM goes
        to the init alone, which passes it on, instead of to each member of
        a frozen cgroup (a freeze of a large tree takes milliseconds)."""
        self.cgroup = cgroup
        self._group = group
        self._spare = spare
        self._to_init = to_init
        self._known: set[psutil.Process] = set()

    def members(self) -> set[psutil.Process]:
        # cgroup.procs lists no zombies, and an empty cgroup says so in one
        # read: polls during a kill cost little however large the tree was.
        try:
            if not self.cgroup.populated():
                self._known = set()
                return set()
            pids = self.cgroup.pids()
        except OSError as exc:  # out of descriptors, say: not "empty"
            raise MembersUnknown(str(exc)) from exc
        self._known = _processes(pids)
        return set(self._known)

    def left(self) -> bool:
        try:
            return self.cgroup.populated()
        except OSError as exc:
            raise MembersUnknown(str(exc)) from exc

    def pause(self, seconds: float, clock: Clock) -> Awaitable[None]:
        # Woken the moment the last process leaves, not a poll later.
        return changed(self.cgroup.path / "cgroup.events", seconds)

    async def terminate(self) -> None:
        if self._to_init is not None and self._to_init(signal.SIGTERM):
            return
        # The group first, at once (the usual case: everything is in it);
        # then, frozen, whatever of the cgroup left the group.
        _killpg(self._group(), signal.SIGTERM)
        try:
            await self.cgroup.signal_all(signal.SIGTERM, spare=self._spare)
        except OSError as exc:
            _complain(exc, self.cgroup)
            self._fallback(signal.SIGTERM)

    def force(self) -> None:
        try:
            self.cgroup.kill()
        except OSError as exc:
            _complain(exc, self.cgroup)
            self._fallback(signal.SIGKILL)

    async def send(self, sig: int) -> None:
        """``sig`` once to each member, frozen; not to the init, which would
        pass it on to them all again."""
        try:
            await self.cgroup.signal_all(sig, spare=self._spare)
        except OSError as exc:
            _complain(exc, self.cgroup)
            with contextlib.suppress(MembersUnknown):
                self.members()
            signal_each({p for p in self._known if alive(p) and p.pid != self._spare}, sig)

    def _fallback(self, sig: int) -> None:
        _killpg(self._group(), sig)
        with contextlib.suppress(MembersUnknown):
            self.members()  # polls only ask whether any is left
        spared = self._spare if sig != signal.SIGKILL else None
        signal_each({p for p in self._known if alive(p) and p.pid != spared}, sig)


class NamespaceTarget(KillTarget):
    """A job in a PID namespace of its own, where no cgroup can be had: its
    init and every process it has (in a PID namespace, every process is a
    descendant of its init). SIGTERM goes to the init, which passes it on to
    all of them at once; SIGKILL to the init ends them all (the kernel kills
    a namespace whose init dies). Both through the init's pidfd, so never to
    a reused PID."""

    def __init__(self, init: psutil.Process | None, to_init: ToInit) -> None:
        self._init = init  # None: it has ended and been reaped already
        self._to_init = to_init

    def members(self) -> set[psutil.Process]:
        if self._init is None or not alive(self._init):
            return set()
        return {self._init, *(p for p in children(self._init, recursive=True) if alive(p))}

    async def terminate(self) -> None:
        self._send(signal.SIGTERM)

    def force(self) -> None:
        self._send(signal.SIGKILL)

    async def send(self, sig: int) -> None:
        self._send(sig)  # the init passes it on to every other process there

    def _send(self, sig: int) -> None:
        self._to_init(sig)


class TreeTarget(KillTarget):
    def __init__(
        self,
        job_id: int,
        session: int,
        leader: psutil.Process | None,
        candidates: Callable[[], list[psutil.Process]],
        group: Group,
    ) -> None:
        self._marker = str(job_id)
        self._leader = leader  # None: it has ended and been reaped already
        self._session = session  # a new session: the leader's PID is its ID
        self._candidates = candidates
        self._group = group
        self._known: set[psutil.Process] = set()
        self._marked: dict[tuple[int, float], bool] = {}

    def members(self) -> set[psutil.Process]:
        # Alive first: a known process that has ended may have a new one's PID.
        found = {p for p in self._known if alive(p)}
        if self._leader is not None and alive(self._leader):
            found.add(self._leader)
        session_safe = self._group() is not None
        for process in self._candidates():
            if process in found:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if (
                    (session_safe and os.getsid(process.pid) == self._session)
                    or self._carries_marker(process)
                ) and alive(process):  # a candidate may be a zombie
                    found.add(process)
        found.update(p for p in descendants(found) if alive(p))
        self._known = found
        return set(found)

    def _carries_marker(self, process: psutil.Process) -> bool:
        key = (process.pid, process.create_time())
        if key not in self._marked:
            self._marked[key] = job_marker(process) == self._marker
        return self._marked[key]

    def _signal(self, sig: int) -> None:
        # Who is in the job is read before the signal: once the leader dies
        # of it and is reaped, its orphans can no longer be told apart by
        # session or descent, and one that survives the signal (a child
        # between fork and exec, in a shell's handler) must still be known.
        members = self.members()
        _killpg(self._group(), sig)
        signal_each(members, sig)

    async def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def force(self) -> None:
        self._signal(signal.SIGKILL)

    async def send(self, sig: int) -> None:
        signal_each(self.members(), sig)  # once each: not the group as well


class TreesTarget(KillTarget):
    """Every process in some servers' cgroup trees: this one's at shutdown,
    or dead servers' (their locks taken) in a sweep."""

    def __init__(self, trees: Iterable[CgroupTree]) -> None:
        self._trees = list(trees)

    def members(self) -> set[psutil.Process]:
        pids: list[int] = []
        for tree in self._trees:
            try:
                seen = tree.pids()
                if not seen and tree.populated():
                    # Processes of another PID namespace: cgroup.kill still
                    # reaches them, signals by PID cannot.
                    raise MembersUnknown(f"{tree.base} holds processes we cannot see")
            except FileNotFoundError:
                continue  # removed meanwhile: nothing left in it
            except OSError as exc:
                raise MembersUnknown(str(exc)) from exc
            pids += seen
        return _processes(pids)

    async def terminate(self) -> None:
        for tree in self._trees:
            for cgroup in tree.job_cgroups():
                try:
                    await cgroup.signal_all(signal.SIGTERM)
                except OSError as exc:
                    _complain(exc, cgroup)
        with contextlib.suppress(MembersUnknown):  # anything outside a job cgroup
            signal_each(self.members(), signal.SIGTERM)

    def force(self) -> None:
        for tree in self._trees:
            tree.kill_everything()
        with contextlib.suppress(MembersUnknown):
            signal_each(self.members(), signal.SIGKILL)


class DescendantsTarget(KillTarget):
    """Every descendant of ``root`` but ``keep`` (orphans of jobs are
    adopted by a subreaper, so at shutdown they are all here), plus
    ``trees``: whatever left the process tree cannot leave its cgroup."""

    def __init__(
        self, root: psutil.Process, keep: Iterable[int] = (), trees: Iterable[CgroupTree] = ()
    ) -> None:
        self._root = root
        self._keep = set(keep) | protected_pids()
        self._trees = TreesTarget(trees)

    def members(self) -> set[psutil.Process]:
        return self._descendants() | self._trees.members()

    async def terminate(self) -> None:
        await self._trees.terminate()
        signal_each(self._descendants(), signal.SIGTERM)

    def force(self) -> None:
        self._trees.force()
        signal_each(self._descendants(), signal.SIGKILL)

    def _descendants(self) -> set[psutil.Process]:
        found = children(self._root, recursive=True)
        return {p for p in found if p.pid not in self._keep and alive(p)}


class UnionTarget(KillTarget):
    """Several kill targets as one."""

    def __init__(self, targets: Iterable[KillTarget]) -> None:
        self._targets = list(targets)

    def members(self) -> set[psutil.Process]:
        found: set[psutil.Process] = set()
        for target in self._targets:
            with contextlib.suppress(MembersUnknown):
                found.update(p for p in target.members() if alive(p))
        return found

    async def terminate(self) -> None:
        for target in self._targets:
            await target.terminate()

    def force(self) -> None:
        for target in self._targets:
            target.force()


async def deliver(target: KillTarget, sig: int) -> None:
    """``sig``, once, to every process of a job's target: a signal for the
    job to handle (HUP, USR1, INT...), not a kill."""
    if isinstance(target, CgroupTarget | NamespaceTarget | TreeTarget):
        await target.send(sig)


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def children(process: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
    """``process``'s children, or all its descendants."""
    if recursive:
        return list(descendants([process]))
    try:
        return process.children()
    except (psutil.Error, OSError):
        return []


def descendants(roots: Iterable[psutil.Process]) -> set[psutil.Process]:
    """Every descendant of ``roots`` (running ones, each looked at once), not
    themselves: read from each one's own list of children where the kernel
    keeps them, instead of a scan of every process on the host each."""
    parents = list(roots)
    found: set[psutil.Process] = set()
    if not _lists_of_children():
        for root in parents:
            with contextlib.suppress(psutil.Error, OSError):
                found.update(root.children(recursive=True))
        return found - set(parents)
    seen = {p.pid for p in parents}
    while parents:
        parent = parents.pop()
        theirs: list[psutil.Process] = []
        for pid in direct_children(parent.pid) or ():  # None: it has ended meanwhile
            if pid in seen:
                continue
            child = process_of(pid)
            with contextlib.suppress(psutil.Error):
                if child is not None and child.ppid() == parent.pid:
                    theirs.append(child)
        # The lists are of whoever holds the PID now: once a process has
        # ended and been reaped, its PID can go to a stranger. Asked after the
        # lists were read, a parent still itself held its PID all along.
        if theirs and parent.is_running():
            seen.update(child.pid for child in theirs)
            found.update(theirs)
            parents.extend(theirs)
    return found


@functools.cache
def _lists_of_children() -> bool:
    """Whether the kernel keeps /proc/PID/task/TID/children (most do)."""
    return direct_children() is not None


def job_marker(process: psutil.Process) -> str | None:
    """The job ID a process carries in its environment. Reading another
    uid's environment takes CAP_SYS_PTRACE, which root lacks in a container;
    then it is read with our filesystem uid and gid set to the process's,
    as its owner may."""
    try:
        return process.environ().get(JOB_ID_VARIABLE)
    except psutil.AccessDenied:
        uids, gids = process.uids(), process.gids()
        with as_owner(uids.real, gids.real):
            return process.environ().get(JOB_ID_VARIABLE)


def _processes(pids: Iterable[int]) -> set[psutil.Process]:
    spared = protected_pids()
    found = (process_of(pid) for pid in pids if pid not in spared)
    return {p for p in found if p is not None}


def _complain(exc: OSError, cgroup: JobCgroup) -> None:
    if exc.errno == errno.EBUSY:
        # Never expected: no process of the server ever enters a job's
        # cgroup (jobs are cloned into theirs). Its processes are signalled
        # one by one, the server's own never.
        log.error("not freezing %s: %s", cgroup.path, exc.strerror)
