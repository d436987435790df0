"""One cgroup v2 per job, where the host lets us make them.

A process cannot leave its cgroup by forking, changing session or being
reparented, so a job's cgroup holds every process the job ever started, and
``cgroup.kill`` ends them all at once. Nothing here assumes a layout: the v2
mount is read from /proc/self/mountinfo, our own place in it from
/proc/self/cgroup, and the whole thing is tried for real before it is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("worker.executor")

PREFIX = "worker-executor-"


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
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def populated(self) -> bool:
        try:
            for line in (self.path / "cgroup.events").read_text().splitlines():
                if line.startswith("populated "):
                    return line.split()[1] == "1"
        except OSError:
            return False
        return bool(self.pids())

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """While frozen no member can fork or exit, so the PIDs read are the
        job's and stay the job's until signalled."""
        try:
            _write(self.path / "cgroup.freeze", "1")
        except OSError:
            yield  # no freezer: the caller's PID checks still apply
            return
        try:
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
        try:
            _write(self.path / "cgroup.kill", "1")  # Linux 5.14+
        except OSError:
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

    @contextlib.contextmanager
    def entered(self, cgroup: JobCgroup) -> Iterator[None]:
        """Put this process in ``cgroup`` for the duration, so that a child
        started meanwhile is born in it (before it can run any code)."""
        _write(cgroup.path / "cgroup.procs", self._me)
        try:
            yield
        finally:
            _write(self.home / "cgroup.procs", self._me)

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


def remove_stale(executor_pid: int) -> None:
    """Best-effort cleanup by the supervisor after its executor died."""
    own = _own_v2_path()
    mount = _v2_mount()
    if own is None or mount is None:
        return
    base = mount / own.lstrip("/") / f"{PREFIX}{executor_pid}"
    if base.is_dir():
        tree = CgroupTree(base.parent, base)
        tree.kill_everything()
        tree.remove()
