"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from bench import ROOT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict[str, str | int]:
    return {
        "cores": os.cpu_count() or 0,
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def job_cgroups_in_use(executor_pid: int) -> bool:
    """Whether this executor made its per-job cgroup v2 tree (else it tracks
    jobs by session and descent): it holds the tree's directory open (its
    lock) for its whole life."""
    try:
        links = [
            os.readlink(f"/proc/{executor_pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{executor_pid}/fd")
        ]
    except OSError:
        return False
    return any(Path(link).name.startswith("worker.") for link in links)


def code_version() -> str:
    """The commit measured, and whether worker/ had uncommitted changes."""
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "worker"], cwd=ROOT, capture_output=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes in worker/" if dirty else commit


def _ticks() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cpu_seconds() -> float:
    """CPU time all cores have spent busy since boot: every process's and the
    kernel's, its threads' included (the machine's cost of what ran)."""
    return _ticks()[0] / os.sysconf("SC_CLK_TCK")


def busy_meanwhile(seconds: float = 1.0) -> float:
    """% of all cores busy while this process sleeps: others' load on the
    machine, which would skew every figure."""
    try:
        busy_before, total_before = _ticks()
        time.sleep(seconds)
        busy_after, total_after = _ticks()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 100 * (busy_after - busy_before) / max(1, total_after - total_before)
