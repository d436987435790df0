"""A job's cgroups made and removed on their own thread, on this host's
real cgroups."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from worker.executor.cgroups import CgroupTree
from worker.executor.jobcgroups import NO_CGROUPS, CgroupThread
from worker.protocol import Limits


def test_a_job_cgroup_is_made_off_the_loop_and_removed_later(tree: CgroupTree) -> None:
    async def main() -> None:
        cgroups = CgroupThread(tree, None)
        try:
            made = await cgroups.make(7, Limits(pids=10), "/")
            assert made.cgroup is not None and made.cgroup.path.is_dir()
            assert made.fd is not None
            assert os.path.samestat(os.fstat(made.fd), os.stat(made.cgroup.path))
            os.close(made.fd)
            # No controllers: a limit asked for is said to be unapplied, never pretended.
            assert (made.limits, made.unapplied) == (Limits(), (("pids", NO_CGROUPS),))
            cgroups.remove(None, made.cgroup)
            await cgroups.idle()
            assert not made.cgroup.path.exists()
        finally:
            cgroups.close()

    asyncio.run(main())


def test_the_work_runs_on_a_thread_of_its_own(tree: CgroupTree) -> None:
    seen: list[str] = []
    create = tree.create

    def recording(job_id: int):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return create(job_id)

    async def main() -> None:
        cgroups = CgroupThread(tree, None)
        try:
            made = await cgroups.make(1, Limits(), "/")
            assert made.fd is not None
            os.close(made.fd)
            cgroups.remove(None, made.cgroup)
        finally:
            cgroups.close()

    tree.create = recording  # type: ignore[method-assign]
    asyncio.run(main())
    assert seen and seen[0].startswith("cgroups") and seen[0] != threading.main_thread().name


def test_a_vanished_tree_is_made_again(tree: CgroupTree) -> None:
    async def main() -> None:
        cgroups = CgroupThread(tree, None)
        try:
            tree.base.rmdir()  # as someone removing it by hand would
            made = await cgroups.make(3, Limits(), "/")
            assert made.cgroup is not None and made.cgroup.path.is_dir()
            assert made.fd is not None
            os.close(made.fd)
            cgroups.remove(None, made.cgroup)
        finally:
            cgroups.close()

    asyncio.run(main())


def test_after_close_a_make_is_refused_and_a_removal_done_at_once(tree: CgroupTree) -> None:
    async def main() -> None:
        cgroups = CgroupThread(tree, None)
        made = await cgroups.make(5, Limits(), "/")
        assert made.fd is not None and made.cgroup is not None
        os.close(made.fd)
        cgroups.close()
        with pytest.raises(OSError, match="stopping"):
            await cgroups.make(6, Limits(), "/")
        cgroups.remove(None, made.cgroup)
        assert not made.cgroup.path.exists()
        await cgroups.idle()  # returns: nothing is pending

    asyncio.run(main())
