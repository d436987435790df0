"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
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
    jobs by session and descent)."""
    mount = None
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split(" - ", 1)
            if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
                mount = Path(fields[0].split()[4])
                break
        own = ""
        for line in Path(f"/proc/{executor_pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                own = line[3:].lstrip("/")
    except OSError:
        return False
    if mount is None:
        return False
    return (mount / own / f"worker-executor-{executor_pid}").is_dir()


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
