"""One cgroup v2 per job, where the host lets us make them.

A process cannot leave its cgroup by forking, changing session or being
reparented, so a job's cgroup holds every process the job ever started, and
``cgroup.kill`` ends them all at once. Nothing here assumes a layout: the v2
mount is read from /proc/self/mountinfo, our own place in it from
/proc/self/cgroup, and the whole thing is tried for real before it is used.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("worker.executor")

PREFIX = "worker-executor-"
# How long to wait for a freeze to take hold before reading the members.
FREEZE_WAIT = 0.05


def _v2_mount() -> Path | None:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            return Path(fields[0].split()[4])
    return None


def _own_v2_path() -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
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
        pretends an unreadable cgroup is empty)."""
        text = (self.path / "cgroup.procs").read_text()
        return [int(pid) for pid in text.split()]

    def _event(self, name: str) -> str | None:
        for line in (self.path / "cgroup.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return value
        return None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """While frozen no member can fork or exit, so the PIDs read are the
        job's and stay the job's until signalled. Never freezes a cgroup this
        process is in."""
        try:
            if os.getpid() in self.pids():
                raise OSError(errno.EBUSY, "the executor itself is in this cgroup")
            _write(self.path / "cgroup.freeze", "1")
        except OSError:
            yield  # no freezer: psutil's PID checks still apply
            return
        try:
            deadline = time.monotonic() + FREEZE_WAIT
            while self._event("frozen") != "1" and time.monotonic() < deadline:
                time.sleep(0.001)
            yield
        finally:
            with contextlib.suppress(OSError):
                _write(self.path / "cgroup.freeze", "0")

    def signal_all(self, sig: int) -> None:
        with self.frozen():
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)

    def kill(self) -> None:
        if os.getpid() in self.pids():
            raise OSError(errno.EBUSY, "the executor itself is in this cgroup")
        try:
            _write(self.path / "cgroup.kill", "1")  # Linux 5.14+
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise
            self.signal_all(signal.SIGKILL)

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
    """``<our cgroup>/worker-executor-<pid>/job-<id>``; we stay in ours."""

    def __init__(self, home: Path, base: Path) -> None:
        self.home = home
        self.base = base
        self._me = str(os.getpid())

    @classmethod
    def detect(cls) -> tuple[CgroupTree | None, str]:
        """The tree, or ``None`` and why it cannot be used on this host."""
        mount = _v2_mount()
        own = _own_v2_path()
        if mount is None or own is None:
            return None, "no cgroup v2 hierarchy is mounted"
        home = mount / own.lstrip("/")
        _sweep_stale(home)
        base = home / f"{PREFIX}{os.getpid()}"
        try:
            base.mkdir(exist_ok=True)
        except OSError as exc:
            return None, f"cannot create a cgroup under {home}: {exc.strerror}"
        tree = cls(home, base)
        probe = JobCgroup(base / "probe")
        try:
            probe.path.mkdir(exist_ok=True)
            with tree.entered(probe):
                pass
        except OSError as exc:
            probe.remove()
            tree.remove()
            return None, f"cannot move processes between cgroups under {home}: {exc.strerror}"
        probe.remove()
        return tree, f"one cgroup v2 per job under {base}"

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

    def kill_everything(self) -> None:
        with contextlib.suppress(OSError):
            _write(self.base / "cgroup.kill", "1")

    def remove(self) -> None:
        """Remove the job cgroups that are empty, then the base if it is."""
        with contextlib.suppress(OSError):
            for child in self.base.iterdir():
                if child.is_dir():
                    JobCgroup(child).remove()
        with contextlib.suppress(OSError):
            self.base.rmdir()


def _sweep_stale(home: Path) -> None:
    """Remove what executors that died without cleaning up (SIGKILL, a crash
    of the whole service) left here: their processes are killed first."""
    with contextlib.suppress(OSError):
        for entry in home.iterdir():
            suffix = entry.name.removeprefix(PREFIX)
            if entry.name == suffix or not suffix.isdigit() or _alive(int(suffix)):
                continue
            tree = CgroupTree(home, entry)
            tree.kill_everything()
            deadline = time.monotonic() + 1.0
            while _populated(entry) and time.monotonic() < deadline:
                time.sleep(0.01)
            tree.remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _populated(path: Path) -> bool:
    try:
        return "populated 1" in (path / "cgroup.events").read_text()
    except OSError:
        return False


def stale_tree(executor_pid: int) -> CgroupTree | None:
    """The job cgroups of an executor that died, for the supervisor to clean."""
    own = _own_v2_path()
    mount = _v2_mount()
    if own is None or mount is None:
        return None
    base = mount / own.lstrip("/") / f"{PREFIX}{executor_pid}"
    return CgroupTree(base.parent, base) if base.is_dir() else None
