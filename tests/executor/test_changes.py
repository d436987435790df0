"""Waiting for a cgroup's events file to change, on a real cgroup the test
makes (skipped where no cgroup v2 tree can be used)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from worker.executor.cgroups import CgroupTree
from worker.executor.changes import changed


def test_the_last_process_leaving_ends_the_wait_at_once(tree: CgroupTree) -> None:
    job = tree.create(1)
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (job.path / "cgroup.procs").write_text(str(sleeper.pid))

        async def wait_across_the_kill() -> float:
            # Killed from the loop once the wait is under way.
            asyncio.get_running_loop().call_later(0.05, sleeper.kill)
            begin = time.monotonic()
            await changed(job.path / "cgroup.events", 30.0)
            return time.monotonic() - begin

        waited = asyncio.run(wait_across_the_kill())
        assert waited < 15.0, "woken by the timer, not by the change"
        assert "populated 0" in (job.path / "cgroup.events").read_text()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait(10)
        job.remove()


def test_without_a_change_the_wait_ends_after_its_time(tree: CgroupTree) -> None:
    job = tree.create(2)
    try:
        begin = time.monotonic()
        asyncio.run(changed(job.path / "cgroup.events", 0.2))
        assert time.monotonic() - begin >= 0.2
    finally:
        job.remove()


def test_a_file_that_cannot_be_watched_is_simply_waited_for(tmp_path: Path) -> None:
    begin = time.monotonic()
    asyncio.run(changed(tmp_path / "gone", 0.1))
    assert time.monotonic() - begin >= 0.1
