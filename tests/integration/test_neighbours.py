"""Servers on one host never harm each other, in whatever PID namespace.

Every server, cgroup and process here is started or made by the test; the
only other trees looked at are the ones it plants itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import Server, start_server, stop_server
from tests.integration.test_pid1 import _namespace_init
from worker.executor import cgroups

pytestmark = pytest.mark.slow


def _job_cgroup(pid: int) -> Path | None:
    """Where a job's process lives in the v2 hierarchy (None: no cgroup)."""
    mount = cgroups.v2_mount()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::") and mount is not None:
            path = mount / line[3:].lstrip("/")
            return path if path.name.startswith("job-") else None
    return None


def _running(server: Server, job_id: int, pid: int) -> bool:
    return server.status(job_id)["status"] == "running" and psutil.pid_exists(pid)


def _plant_dead_tree() -> tuple[Path, subprocess.Popen[bytes]]:
    """A tree as a server that died would leave it: nobody holds its lock,
    a process still runs in one of its job cgroups."""
    where = cgroups.home()
    assert where is not None
    dead = where / f"{cgroups.PREFIX}planted{os.getpid()}"
    (dead / "job-1").mkdir(parents=True)
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    (dead / "job-1" / "cgroup.procs").write_text(str(orphan.pid))
    return dead, orphan


def test_a_server_in_another_pid_namespace_leaves_ours_alone(tmp_path: Path) -> None:
    ours = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    outer, init = None, None
    dead, orphan = None, None
    try:
        job = ours.run_job("sleep", "300")
        pid = ours.status(job)["pid"]
        cgroup = _job_cgroup(pid)
        if cgroup is None:
            pytest.skip("this host gives jobs no cgroup v2, so no tree can be harmed")
        dead, orphan = _plant_dead_tree()
        outer, theirs, init = _namespace_init(tmp_path)
        # Their start-up sweep ran: it stopped the dead tree's process (by
        # cgroup.kill, since from their namespace it is invisible) ...
        try:
            assert orphan.wait(30) in (-signal.SIGTERM, -signal.SIGKILL)
        except subprocess.TimeoutExpired:
            raise AssertionError(theirs.stderr_path.read_text()) from None
        deadline = time.monotonic() + 10
        while dead.exists():
            assert time.monotonic() < deadline, "the dead tree was not removed"
            time.sleep(0.05)
        # ... and left ours alone, though its PIDs mean nothing there.
        assert _running(ours, job, pid)
        assert cgroup.is_dir()
        other = theirs.run_job("sh", "-c", "echo theirs")
        assert theirs.wait_final(other)["status"] == "completed"
        again = ours.run_job("sh", "-c", "echo ours")
        assert ours.wait_final(again)["status"] == "completed"
        assert ours.output(again) == "ours\n"
        init.send_signal(signal.SIGTERM)  # their `worker serve`, PID 1 there
        assert outer.wait(30) == 0
        assert _running(ours, job, pid)
        killed = ours.request("PUT", f"/jobs/{job}/kill")
        assert killed.json()["status"] == "killed"
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    finally:
        if outer is not None:
            stop_server(outer)
        stop_server(ours.process)
        if orphan is not None and orphan.poll() is None:
            orphan.kill()
            orphan.wait(10)
        if dead is not None and dead.exists():
            for child in (dead / "job-1", dead):
                child.rmdir()


def test_a_tree_removed_from_outside_is_made_again(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        first = server.run_job("sleep", "300")
        cgroup = _job_cgroup(server.status(first)["pid"])
        if cgroup is None:
            pytest.skip("this host gives jobs no cgroup v2")
        assert server.request("PUT", f"/jobs/{first}/kill").status == 200
        base = cgroup.parent
        deadline = time.monotonic() + 10
        while cgroup.exists():  # the executor removes a job's cgroup at its end
            assert time.monotonic() < deadline
            time.sleep(0.02)
        base.rmdir()  # what a careless neighbour might do
        second = server.run_job("sleep", "300")
        pid = server.status(second)["pid"]
        moved = _job_cgroup(pid)
        assert moved is not None and moved.parent != base and moved.parent.is_dir()
        assert server.request("PUT", f"/jobs/{second}/kill").json()["status"] == "killed"
        assert "vanished" in server.stderr_path.read_text()
        assert server.wait_final(server.run_job("true"))["status"] == "completed"
    finally:
        stop_server(server.process)
