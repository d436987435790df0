"""Cgroup detection on this host, for real (skipped where it cannot be used)."""

from __future__ import annotations

import os

import pytest

from worker.executor import cgroups
from worker.executor.cgroups import PREFIX, CgroupTree


@pytest.fixture
def tree() -> CgroupTree:
    found, why = CgroupTree.detect()
    if found is None:
        pytest.skip(f"no usable cgroup v2 here: {why}")
    return found


def test_detect_makes_a_private_tree_and_moves_us_back(tree: CgroupTree) -> None:
    try:
        assert tree.base.name == f"{PREFIX}{os.getpid()}"
        job = tree.create(1)
        with tree.entered(job):
            assert os.getpid() in job.pids()
        assert os.getpid() not in job.pids()
        assert job.remove()
    finally:
        tree.remove()
    assert not tree.base.exists()


def test_detect_sweeps_what_a_dead_executor_left(tree: CgroupTree) -> None:
    tree.remove()
    # PIDs stop well below this, so no process can own it.
    stale = tree.home / f"{PREFIX}{4_194_304 + 1}"
    (stale / "job-7").mkdir(parents=True)
    again, _ = CgroupTree.detect()
    assert again is not None
    try:
        assert not stale.exists()
    finally:
        again.remove()


def test_a_pid_that_cannot_exist_is_not_alive() -> None:
    assert not cgroups._alive(4_194_304 + 1)
    assert cgroups._alive(os.getpid())
