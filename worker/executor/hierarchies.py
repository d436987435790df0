"""Where the cgroup hierarchies are mounted, and where in each we are.

Read from /proc/self/mountinfo and /proc/self/cgroup, nothing assumed: the
v2 hierarchy (``cgroup2``) and each v1 hierarchy (``cgroup``, named by the
controllers it holds). A mount may show only part of a hierarchy (a bind
mount, a container's view): its root field says which part, and our own
path is taken relative to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# v1 controllers this server can use, by the names of the v2 ones they stand for.
V1_NAMES = {"memory": "memory", "cpu": "cpu", "cpuacct": "cpuacct", "pids": "pids", "io": "blkio"}


@dataclass(frozen=True, slots=True)
class Mount:
    point: Path
    root: str  # the part of the hierarchy this mount shows
    controllers: frozenset[str]  # empty for cgroup2


def mounts() -> tuple[Mount | None, list[Mount]]:
    """The v2 mount (None if none) and the v1 mounts."""
    v2: Mount | None = None
    v1: list[Mount] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None, []
    for line in lines:
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        fields, tail = before.split(), after.split()
        kind, options = tail[0], tail[2] if len(tail) > 2 else ""
        if kind == "cgroup2" and v2 is None:
            v2 = Mount(Path(fields[4]), fields[3], frozenset())
        elif kind == "cgroup":
            held = frozenset(o for o in options.split(",") if o in V1_NAMES.values())
            if held:
                v1.append(Mount(Path(fields[4]), fields[3], held))
    return v2, v1


def own_paths() -> dict[frozenset[str], str]:
    """Our cgroup in each hierarchy: ``frozenset()`` for v2, the set of
    controllers for a v1 one."""
    found: dict[frozenset[str], str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        found[frozenset(c for c in controllers.split(",") if c)] = path
    return found


def place(mount: Mount, path: str) -> Path | None:
    """Where cgroup ``path`` (as /proc/self/cgroup says it) is under
    ``mount``; None if this mount does not show it."""
    relative = os.path.relpath(path, mount.root) if mount.root != "/" else path.lstrip("/")
    if relative.startswith(".."):
        return None
    return mount.point / relative if relative != "." else mount.point


def v2_home() -> Path | None:
    v2, _ = mounts()
    path = own_paths().get(frozenset())
    return place(v2, path) if v2 is not None and path is not None else None


def v1_homes() -> dict[str, Path]:
    """Our cgroup in each v1 hierarchy that holds a controller we use, by
    v1 controller name."""
    _, v1 = mounts()
    paths = own_paths()
    homes: dict[str, Path] = {}
    for mount in v1:
        path = paths.get(mount.controllers)
        where = place(mount, path) if path is not None else None
        if where is not None:
            for controller in mount.controllers:
                homes[controller] = where
    return homes
