"""Cgroup trees on this host, for real (skipped where they cannot be used).

Every cgroup and process here is made by the test itself; trees of other
servers on the host are never looked at, only the ones named here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.executor import cgroups, hierarchies
from worker.executor.cgroups import PREFIX, CgroupTree, JobCgroup
from worker.executor.sweep import sweep_dead_trees

HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def _sleeper_in(cgroup: JobCgroup) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    (cgroup.path / "cgroup.procs").write_text(str(process.pid))
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_detect_makes_a_locked_private_tree_and_moves_us_back(tree: CgroupTree) -> None:
    assert tree.base.parent == tree.home
    assert tree.base.name.startswith(PREFIX)
    with pytest.raises(BlockingIOError):
        cgroups.lock(tree.base)  # held for the executor's whole life
    job = tree.create(1)
    with tree.entered(job):
        assert os.getpid() in job.pids()
    assert os.getpid() not in job.pids()
    assert job.remove()
    base = tree.base
    tree.remove()
    assert not base.exists()


def test_a_live_trees_lock_is_seen_from_another_process(tree: CgroupTree) -> None:
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fcntl, os\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
            "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "except BlockingIOError:\n    sys.exit(3)\n",
            str(tree.base),
        ],
        timeout=30,
        check=False,
    )
    assert other.returncode == 3


@pytest.fixture
def private_home(tree: CgroupTree, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cgroup of this test's own to play "home" in: no server, of this run
    or another, sweeps or even sees the trees made in it."""
    where = tree.home / f"worker-test-home-{os.getpid()}"
    where.mkdir()
    monkeypatch.setattr(cgroups, "home", lambda: where)
    monkeypatch.setattr(hierarchies, "v1_homes", dict)  # nor any v1 tree
    yield where
    for path in sorted(where.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            path.rmdir()
    where.rmdir()


def test_sweep_stops_and_removes_only_dead_trees(private_home: Path) -> None:
    # A dead server's tree: nobody holds its lock, a process still in it.
    dead = private_home / f"{PREFIX}dead"
    (dead / "job-7").mkdir(parents=True)
    victim = _sleeper_in(JobCgroup(dead / "job-7"))
    # A live one: its lock taken first, by a process of ours, then a job in it.
    live = private_home / f"{PREFIX}live"
    (live / "job-1").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(live)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    survivor = None
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        survivor = _sleeper_in(JobCgroup(live / "job-1"))
        assert asyncio.run(sweep_dead_trees(grace=1.0)) == 1
        assert victim.wait(10) == -signal.SIGTERM
        assert not dead.exists()
        assert survivor.poll() is None
        assert live.exists()
    finally:
        for process in (victim, survivor):
            if process is not None:
                _stop(process)
        holder.communicate(b"", timeout=10)


def test_the_server_is_never_frozen_or_signalled_as_part_of_a_job(tree: CgroupTree) -> None:
    job = tree.create(2)
    try:
        with tree.entered(job):
            with pytest.raises(OSError) as raised:
                job.kill()
            assert raised.value.errno == errno.EBUSY

            async def freeze() -> None:
                async with job.frozen():
                    pass

            with pytest.raises(OSError) as raised:
                asyncio.run(freeze())
            assert raised.value.errno == errno.EBUSY
        assert (job.path / "cgroup.freeze").read_text().strip() == "0"
    finally:
        job.remove()


def test_frozen_lists_every_member_of_a_job(tree: CgroupTree) -> None:
    job = tree.create(3)
    sleepers = [_sleeper_in(job) for _ in range(3)]
    try:

        async def members() -> list[int]:
            async with job.frozen() as pids:
                assert (job.path / "cgroup.events").read_text().count("frozen 1") == 1
                return pids

        assert sorted(asyncio.run(members())) == sorted(p.pid for p in sleepers)
        assert "frozen 0" in (job.path / "cgroup.events").read_text()
    finally:
        for process in sleepers:
            _stop(process)
        job.remove()


def test_recreate_makes_a_new_locked_base(tree: CgroupTree) -> None:
    old = tree.base
    old.rmdir()  # as someone removing it from outside would
    tree.recreate()
    assert tree.base != old and tree.base.is_dir()
    with pytest.raises(BlockingIOError):
        cgroups.lock(tree.base)


def test_home_is_where_this_process_lives() -> None:
    where = cgroups.home()
    if where is None:
        pytest.skip("no cgroup v2 hierarchy is mounted")
    assert str(os.getpid()) in Path(where, "cgroup.procs").read_text().split()
