"""What a job used, read from its controllers' counter files: here files
written as the kernel writes them, in directories standing for cgroups."""

from __future__ import annotations

from pathlib import Path

from worker.executor.cgroups import JobCgroup
from worker.executor.controllers import JobControllers
from worker.protocol import Usage


def _cgroup(where: Path, **files: str) -> Path:
    where.mkdir()
    for name, text in files.items():
        (where / name.replace("__", ".")).write_text(text)
    return where


def test_a_v2_cgroup_gives_cpu_time_and_v1_ones_the_peaks(tmp_path: Path) -> None:
    v2 = _cgroup(tmp_path / "v2", cpu__stat="usage_usec 2500000\nuser_usec 2000000\n")
    memory = _cgroup(tmp_path / "memory", memory__max_usage_in_bytes="1048576\n")
    pids = _cgroup(tmp_path / "pids", pids__peak="7\n")
    controls = JobControllers({"memory": memory, "pids": pids}, JobCgroup(v2), set(), {})
    assert controls.usage() == Usage(2.5, 1048576, 7)


def test_without_v2_cpu_time_it_comes_from_cpuacct(tmp_path: Path) -> None:
    v2 = _cgroup(tmp_path / "v2")  # a kernel before 4.15 keeps no cpu.stat there
    cpuacct = _cgroup(tmp_path / "cpuacct", cpuacct__usage="1500000000\n")
    controls = JobControllers({"cpuacct": cpuacct}, JobCgroup(v2), set(), {})
    assert controls.usage() == Usage(1.5, None, None)


def test_with_no_counters_nothing_is_made_up(tmp_path: Path) -> None:
    controls = JobControllers({}, None, set(), {})
    assert controls.usage() == Usage(None, None, None)


def test_a_counter_that_cannot_be_read_is_unknown_not_zero(tmp_path: Path) -> None:
    v2 = _cgroup(tmp_path / "v2", cpu__stat="user_usec 1\n")  # no usage_usec
    pids = _cgroup(tmp_path / "pids", pids__peak="not a number\n")
    controls = JobControllers({"pids": pids}, JobCgroup(v2), set(), {})
    assert controls.usage() == Usage(None, None, None)


def test_the_oom_counter_says_whether_the_kernel_killed_for_the_limit(tmp_path: Path) -> None:
    quiet = _cgroup(tmp_path / "a", memory__oom_control="oom_kill_disable 0\noom_kill 0\n")
    killed = _cgroup(tmp_path / "b", memory__oom_control="oom_kill_disable 0\noom_kill 2\n")
    assert not JobControllers({"memory": quiet}, None, set(), {}).oom_killed()
    assert JobControllers({"memory": killed}, None, set(), {}).oom_killed()
