"""Enforcing a job's limits with the kernel's cgroup controllers.

Each controller is used where the host has it: in the v2 hierarchy if it is
enabled for our tree (most current distributions), else in its v1 hierarchy
(hosts where v1 holds the controllers, as this project's own machines do).
v1 job cgroups are ``<our v1 cgroup>/worker.<random>/job-ID``, locked like
the v2 tree; a job joins them itself before its command runs. A controller
the host lacks, or that is turned off, is reported, never pretended.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from worker.executor import cgroups, hierarchies
from worker.executor.cgroups import CgroupTree, JobCgroup
from worker.executor.limits import CONTROLLER, given
from worker.linux import read_file
from worker.protocol import Limits, Usage

CFS_PERIOD = 100_000  # microseconds
ALL = ("memory", "cpu", "pids", "io")


class Controllers:
    """Where each controller is: "v2", a v1 tree, or missing (and why)."""

    def __init__(
        self,
        v2: CgroupTree | None,
        v2_enabled: set[str],
        v1: dict[str, Path],
        missing: dict[str, str],
    ) -> None:
        self._v2 = v2
        self.v2_enabled = v2_enabled
        self.v1 = v1  # v1 controller name -> our locked tree's base
        self.missing = missing
        self._locks: list[int] = []

    @classmethod
    def detect(cls, v2: CgroupTree | None, wanted: tuple[str, ...] = ALL) -> Controllers:
        missing = {name: "turned off (--cgroup-controllers)" for name in ALL if name not in wanted}
        enabled = _enable_v2(v2, wanted) if v2 is not None else set()
        self = cls(v2, enabled, {}, missing)
        homes = hierarchies.v1_homes()
        v1_wanted = [hierarchies.V1_NAMES[n] for n in wanted if n not in enabled]
        if v2 is None:
            v1_wanted.append("cpuacct")  # CPU time, which v2's cpu.stat gives otherwise
        made: dict[Path, Path] = {}
        for controller in v1_wanted:
            home = homes.get(controller)
            if home is None:
                continue
            try:
                if home not in made:
                    made[home] = self._make_v1_base(home)
                self.v1[controller] = made[home]
            except OSError as exc:
                self.missing.setdefault(
                    _v2_name(controller), f"cannot use v1 {controller}: {exc.strerror}"
                )
        for name in wanted:
            if name not in enabled and hierarchies.V1_NAMES[name] not in self.v1:
                self.missing.setdefault(name, "the host has no such controller for us")
        return self

    def _make_v1_base(self, home: Path) -> Path:
        base = home / f"{cgroups.PREFIX}{secrets.token_hex(6)}"
        base.mkdir()
        self._locks.append(cgroups.lock(base))
        return base

    def describe(self) -> str:
        where = [f"{n} (v2)" for n in ALL if n in self.v2_enabled]
        where += [f"{n} (v1)" for n in ALL if hierarchies.V1_NAMES[n] in self.v1]
        line = "limits: " + (", ".join(where) if where else "none")
        return line + "".join(f"; no {n}: {why}" for n, why in sorted(self.missing.items()))

    def job(self, job_id: int, v2_cgroup: JobCgroup | None, limits: Limits) -> JobControllers:
        """The job's cgroups in the v1 hierarchies its limits need (made now;
        each is a migration when the job joins it, so no more than needed),
        and its v2 one."""
        needed = {hierarchies.V1_NAMES[CONTROLLER[name]] for name in given(limits)}
        needed.add("cpuacct")
        made: dict[Path, Path] = {}
        dirs: dict[str, Path] = {}
        for controller, base in self.v1.items():
            if controller not in needed:
                continue
            if base not in made:
                path = base / f"job-{job_id}"
                path.mkdir(exist_ok=True)
                made[base] = path
            dirs[controller] = made[base]
        return JobControllers(dirs, v2_cgroup, self.v2_enabled, self.missing)

    def remove(self) -> None:
        for base in set(self.v1.values()):
            with contextlib.suppress(OSError):
                for child in base.iterdir():
                    if child.is_dir():
                        child.rmdir()
                base.rmdir()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()


class JobControllers:
    def __init__(
        self,
        v1: dict[str, Path],
        v2: JobCgroup | None,
        v2_enabled: set[str],
        missing: dict[str, str],
    ) -> None:
        self._v1 = v1
        self._v2 = v2.path if v2 is not None else None
        self._v2_enabled = v2_enabled
        self._missing = missing

    @property
    def join(self) -> tuple[bytes, ...]:
        """The cgroup.procs files the job writes itself into before it runs."""
        return tuple(os.fsencode(path / "cgroup.procs") for path in set(self._v1.values()))

    def apply(self, limits: Limits, cwd: str) -> tuple[Limits, dict[str, str]]:
        """Write the limits; what was applied, and why not the rest."""
        applied: dict[str, float | int] = {}
        refused: dict[str, str] = {}
        for name, value in given(limits).items():
            controller = CONTROLLER[name]
            if controller in self._missing:
                refused[name] = self._missing[controller]
                continue
            try:
                self._write(name, value, cwd)
                applied[name] = value
            except OSError as exc:
                refused[name] = exc.strerror or str(exc)
        return Limits(**applied), refused  # type: ignore[arg-type]

    def _write(self, name: str, value: float, cwd: str) -> None:
        v2 = self._v2 if CONTROLLER[name] in self._v2_enabled else None
        if name == "memory":
            if v2 is not None:
                _put(v2 / "memory.max", int(value))
                _put(v2 / "memory.swap.max", 0, missing_ok=True)
            else:
                memory = self._v1["memory"]
                _put(memory / "memory.limit_in_bytes", int(value))
                _put(memory / "memory.memsw.limit_in_bytes", int(value), missing_ok=True)
        elif name == "cpus":
            quota = max(1000, int(value * CFS_PERIOD))
            if v2 is not None:
                _put(v2 / "cpu.max", f"{quota} {CFS_PERIOD}")
            else:
                _put(self._v1["cpu"] / "cpu.cfs_period_us", CFS_PERIOD)
                _put(self._v1["cpu"] / "cpu.cfs_quota_us", quota)
        elif name == "pids":
            _put((v2 or self._v1["pids"]) / "pids.max", int(value))
        else:
            self._write_io(name, int(value), cwd, v2)

    def _write_io(self, name: str, value: int, cwd: str, v2: Path | None) -> None:
        if name == "io_weight":
            if v2 is not None:
                _put(v2 / "io.weight", f"default {value}")
            else:  # v1 weights are 10-1000
                _put(self._v1["blkio"] / "blkio.bfq.weight", max(10, min(1000, value // 10)))
            return
        device = block_device(cwd)
        key = "rbps" if name == "io_read_bps" else "wbps"
        if v2 is not None:
            _put(v2 / "io.max", f"{device} {key}={value}")
        else:
            kind = "read" if key == "rbps" else "write"
            _put(self._v1["blkio"] / f"blkio.throttle.{kind}_bps_device", f"{device} {value}")

    def usage(self) -> Usage:
        """What the job has used so far, from the controllers' counters."""
        cpu = memory = pids = None
        with contextlib.suppress(OSError, ValueError):
            cpu = self._cpu_seconds()
        with contextlib.suppress(OSError, ValueError):
            if self._v2 is not None and "memory" in self._v2_enabled:
                memory = int(read_file(self._v2 / "memory.peak"))
            elif "memory" in self._v1:
                memory = int(read_file(self._v1["memory"] / "memory.max_usage_in_bytes"))
        with contextlib.suppress(OSError, ValueError):
            where = self._v2 if "pids" in self._v2_enabled else self._v1.get("pids")
            if where is not None:
                pids = int(read_file(where / "pids.peak"))
        return Usage(cpu, memory, pids)

    def _cpu_seconds(self) -> float | None:
        # v2 keeps CPU time in every cgroup, its cpu controller enabled or
        # not; before Linux 4.15 it kept none, and v1 has it from cpuacct.
        if self._v2 is not None:
            with contextlib.suppress(FileNotFoundError):
                return _stat(self._v2 / "cpu.stat", "usage_usec") / 1e6
        if "cpuacct" in self._v1:
            return int(read_file(self._v1["cpuacct"] / "cpuacct.usage")) / 1e9
        return None

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the job for its memory limit."""
        with contextlib.suppress(OSError, ValueError):
            if self._v2 is not None and "memory" in self._v2_enabled:
                return _stat(self._v2 / "memory.events", "oom_kill") > 0
            if "memory" in self._v1:
                return _stat(self._v1["memory"] / "memory.oom_control", "oom_kill") > 0
        return False

    def remove(self) -> None:
        for path in set(self._v1.values()):
            with contextlib.suppress(OSError):
                path.rmdir()


def block_device(path: str) -> str:
    """``MAJ:MIN`` of the disk that holds ``path`` (a partition's disk, since
    the IO controllers limit whole devices)."""
    device = os.stat(path).st_dev
    major, minor = os.major(device), os.minor(device)
    sysfs = Path(f"/sys/dev/block/{major}:{minor}")
    if not sysfs.exists():
        raise OSError(errno.ENODEV, f"{path} is on no block device")
    if (sysfs / "partition").exists():
        return (sysfs.resolve().parent / "dev").read_text().strip()
    return f"{major}:{minor}"


def _enable_v2(tree: CgroupTree, wanted: tuple[str, ...]) -> set[str]:
    """Enable what v2 has of ``wanted`` for our tree's job cgroups."""
    try:
        available = set((tree.home / "cgroup.controllers").read_text().split())
    except OSError:
        return set()
    enabled: set[str] = set()
    for name in wanted:
        if name not in available:
            continue
        try:  # our own cgroup first (refused if processes are in it), then the tree
            for where in (tree.home, tree.base):
                _put(where / "cgroup.subtree_control", f"+{name}")
        except OSError:
            continue
        enabled.add(name)
    return enabled


def _v2_name(v1: str) -> str:
    return next((n for n, v in hierarchies.V1_NAMES.items() if v == v1), v1)


def _put(path: Path, value: object, missing_ok: bool = False) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _stat(path: Path, key: str) -> int:
    value = cgroups.keyed(path, key)
    if value is None:
        raise ValueError(f"no {key} in {path}")
    return int(value)
