"""One cgroup v2 per job, where the host lets us make them.

A process cannot leave its cgroup by forking, changing session or being
reparented, so a job's cgroup holds every process the job ever started, and
``cgroup.kill`` ends them all at once. Nothing here assumes a layout: the v2
mount is read from /proc/self/mountinfo, our own place in it from
/proc/self/cgroup, and the whole thing is tried for real before it is used.

Each server's cgroups live under ``<our cgroup>/worker.<random>``, whose
directory the executor holds ``flock``ed for its whole life. The kernel drops
that lock when the executor dies, whatever PID namespace or container it was
in, so "the lock is free" is the proof that a tree is dead: only then may
another server sweep it (see ``sweep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from worker.executor import hierarchies
from worker.executor.killer import protected_pids
from worker.linux import read_file

log = logging.getLogger("worker.executor")

PREFIX = "worker."
# How long to wait for a freeze to take hold before reading the members.
FREEZE_WAIT = 0.05


def v2_mount() -> Path | None:
    v2, _ = hierarchies.mounts()
    return v2.point if v2 is not None else None


def home() -> Path | None:
    """Our own cgroup in the v2 hierarchy, where every tree is made."""
    return hierarchies.v2_home()


def keyed(path: Path, key: str) -> bytes | None:
    """The value of ``key`` in a cgroup file of "key value" lines
    (``cgroup.events``, ``cpu.stat``, ``memory.oom_control``); None if the
    file has no such line."""
    wanted = key.encode()
    for line in read_file(path).splitlines():
        name, _, value = line.partition(b" ")
        if name == wanted:
            return value
    return None


def _write(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class JobCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    def pids(self) -> list[int]:
        """The member PIDs; raises OSError when they cannot be read (never
        pretends an unreadable cgroup is empty). Members outside our PID
        namespace read as 0 and are left out: ``kill(0, ...)`` would signal
        our own process group."""
        listed = read_file(self.path / "cgroup.procs")
        return [pid for pid in map(int, listed.split()) if pid > 0]

    def populated(self) -> bool:
        return self._event("populated") == "1"

    def _event(self, name: str) -> str | None:
        value = keyed(self.path / "cgroup.events", name)
        return None if value is None else value.decode()

    def _refuse_if_ours(self, pids: list[int]) -> None:
        if protected_pids().intersection(pids):
            raise OSError(errno.EBUSY, f"the server itself is in {self.path}")

    @contextlib.asynccontextmanager
    async def frozen(self) -> AsyncIterator[list[int]]:
        """The member PIDs, read while frozen: no member can fork or exit,
        so every PID read is the job's and stays the job's until thawed.

        Raises OSError (EBUSY) if the server itself is in the cgroup: it must
        never be frozen or signalled as part of a job. Where the freezer is
        refused, the PIDs are read unfrozen: one could then exit and its PID
        be reused before it is signalled."""
        self._refuse_if_ours(self.pids())
        try:
            _write(self.path / "cgroup.freeze", "1")
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise
            pids = self.pids()
            self._refuse_if_ours(pids)
            yield pids
            return
        try:
            waited, step = 0.0, 0.0005
            while self._event("frozen") != "1" and waited < FREEZE_WAIT:
                await asyncio.sleep(step)  # never block the loop while it settles
                waited += step
                step = min(step * 2, 0.01)
            pids = self.pids()
            self._refuse_if_ours(pids)
            yield pids
        finally:
            with contextlib.suppress(OSError):
                _write(self.path / "cgroup.freeze", "0")

    async def signal_all(self, sig: int, spare: int | None = None) -> None:
        async with self.frozen() as pids:
            for pid in pids:
                if pid != spare:
                    with contextlib.suppress(OSError):
                        os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL every member at once (``cgroup.kill``, Linux 5.14+)."""
        self._refuse_if_ours(self.pids())
        _write(self.path / "cgroup.kill", "1")

    def remove(self) -> bool:
        """Remove the (empty) cgroup; False while processes remain in it."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


class CgroupTree:
    """``<home>/worker.<random>/job-<id>``: this server's cgroups. The
    executor stays in ``home`` and holds the base directory locked."""

    def __init__(self, home: Path, base: Path, lock_fd: int | None) -> None:
        self.home = home
        self.base = base
        self._lock_fd = lock_fd
        self._me = str(os.getpid())

    @classmethod
    def detect(cls) -> tuple[CgroupTree | None, str]:
        """Make this server's tree; or ``None`` and why cgroups cannot be
        used on this host."""
        where = home()
        if where is None:
            return None, "no cgroup v2 hierarchy is mounted"
        try:
            tree = cls._make(where)
        except OSError as exc:
            return None, f"cannot create a cgroup under {where}: {exc.strerror}"
        probe = JobCgroup(tree.base / "probe")
        try:
            probe.path.mkdir(exist_ok=True)
            with tree.entered(probe):
                pass
        except OSError as exc:
            probe.remove()
            tree.remove()
            return None, f"cannot move processes between cgroups under {where}: {exc.strerror}"
        probe.remove()
        return tree, f"one cgroup v2 per job under {tree.base}"

    @classmethod
    def _make(cls, where: Path) -> CgroupTree:
        for _ in range(3):
            base = where / f"{PREFIX}{secrets.token_hex(6)}"
            base.mkdir()
            try:
                return cls(where, base, lock(base))
            except (BlockingIOError, FileNotFoundError):
                # Another server's sweep took it between mkdir and lock (it
                # looked dead, being empty and unlocked), or has removed it.
                continue
            except OSError:
                with contextlib.suppress(OSError):
                    base.rmdir()
                raise
        raise OSError(errno.EAGAIN, "cgroups keep being taken by another server's sweep")

    def recreate(self) -> None:
        """The base vanished (someone removed it): make a new one."""
        self.close()
        fresh = CgroupTree._make(self.home)
        self.base, self._lock_fd = fresh.base, fresh._lock_fd

    def create(self, job_id: int) -> JobCgroup:
        path = self.base / f"job-{job_id}"
        path.mkdir(exist_ok=True)
        return JobCgroup(path)

    def enter(self, cgroup: JobCgroup) -> None:
        """Put this process in ``cgroup``, so that a child started now is
        born in it (before it can run any code). ``leave`` right after."""
        _write(cgroup.path / "cgroup.procs", self._me)

    def leave(self) -> None:
        """Back home; tried hard, since a freeze of a job's cgroup must never
        catch the executor."""
        for _ in range(3):
            try:
                _write(self.home / "cgroup.procs", self._me)
                return
            except OSError as exc:
                error = exc
        log.error("cannot move the executor back to %s: %s", self.home, error)
        raise error

    @contextlib.contextmanager
    def entered(self, cgroup: JobCgroup) -> Iterator[None]:
        self.enter(cgroup)
        try:
            yield
        finally:
            self.leave()

    def job_cgroups(self) -> list[JobCgroup]:
        try:
            return [JobCgroup(p) for p in self.base.iterdir() if p.is_dir()]
        except OSError:
            return []

    def populated(self) -> bool:
        """Whether any process is anywhere in the tree, seen or not."""
        try:
            return JobCgroup(self.base).populated()
        except FileNotFoundError:
            return False

    def pids(self) -> list[int]:
        """Every process anywhere in the tree that our PID namespace can
        see; OSError if unreadable."""
        pids = JobCgroup(self.base).pids()
        for cgroup in self.job_cgroups():
            pids += cgroup.pids()
        return pids

    def kill_everything(self) -> None:
        with contextlib.suppress(OSError):
            JobCgroup(self.base).kill()

    def remove(self) -> None:
        """Remove the job cgroups that are empty, then the base if it is;
        the lock goes with it."""
        for cgroup in self.job_cgroups():
            cgroup.remove()
        with contextlib.suppress(OSError):
            self.base.rmdir()
        self.close()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def lock(base: Path) -> int:
    """Hold ``base`` locked (an open descriptor with ``flock``): the lock
    lives exactly as long as this process, or until ``os.close``. Raises
    BlockingIOError while another process holds it."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def dead_trees(where: Path) -> list[CgroupTree]:
    """The trees under ``where`` whose server is gone, each locked by us.
    A tree whose lock is held belongs to a live server (in any PID
    namespace or container) and is never touched; nor is anything not
    named like ours."""
    found: list[CgroupTree] = []
    with contextlib.suppress(OSError):
        for entry in where.iterdir():
            if not entry.name.startswith(PREFIX) or not entry.is_dir():
                continue
            with contextlib.suppress(OSError):
                found.append(CgroupTree(where, entry, lock(entry)))
    return found
