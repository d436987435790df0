"""The reaper and a job leader that ends before it is watched: a fast job
can exit before the spawner's reply with its PID reaches the executor, and
SIGCHLD reaps it unclaimed. Its end and exit status must still be told.

Run in a process of its own: a child subreaper's SIGCHLD handling reaps
every child of its process, and this test's process has only its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

SCRIPT = r"""
import asyncio, fcntl, json, os, resource, signal, sys, time
from worker.executor.exits import ChildReaper

HIGH = int(sys.argv[1])  # where each pidfd is moved to: from 1024 on as a busy server's are

def pidfd_of(pid):
    fd = os.pidfd_open(pid)
    if not HIGH:
        return fd
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, HIGH)
    os.close(fd)
    return high

def reaped_by_someone(pid):
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False

async def until(check):
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)

async def main():
    reaper = ChildReaper(asyncio.get_running_loop(), adopt_orphans=True)
    fast = os.fork()
    if fast == 0:
        os._exit(3)
    fast_fd = pidfd_of(fast)
    await until(lambda: reaped_by_someone(fast))  # SIGCHLD took it, unwatched
    told = asyncio.Event()
    reaper.watch(fast, told.set, fast_fd)
    await asyncio.wait_for(told.wait(), 10)
    status = reaper.reaped(fast)

    # A record left by an earlier process with the PID a live one now has.
    alive = os.fork()
    if alive == 0:
        signal.pause()
        os._exit(0)
    alive_fd = pidfd_of(alive)
    reaper._unclaimed[alive] = 0
    ends = []
    # WNOHANG: an end told too early must show, not hang the test.
    reaper.watch(alive, lambda: ends.append(os.waitpid(alive, os.WNOHANG)[1]), alive_fd)
    for _ in range(3):  # a call_soon'd end would have run by now
        await asyncio.sleep(0)
    early = list(ends)
    os.kill(alive, signal.SIGKILL)
    await until(lambda: ends)
    print(json.dumps({
        "pidfds": [fast_fd, alive_fd],
        "fast_exit_code": None if status is None else os.waitstatus_to_exitcode(status),
        "reaped_once": reaper.reaped(fast) is None,
        "alive_told_early": early,
        "alive_exit_code": os.waitstatus_to_exitcode(ends[0]),
    }))

if HIGH:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH + 64), hard))
asyncio.run(main())
"""
HIGH = 1500


@pytest.mark.parametrize("high", [0, HIGH], ids=["low descriptors", "descriptors from 1024 on"])
def test_a_leader_reaped_before_its_watch_is_told_with_its_status(high: int) -> None:
    if high and resource.getrlimit(resource.RLIMIT_NOFILE)[1] < high + 64:
        pytest.skip(f"the hard limit on descriptors is under {high + 64} here")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(high)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert all(fd >= high for fd in result["pidfds"])
    assert result["fast_exit_code"] == 3  # not -9 "reaped elsewhere"
    assert result["reaped_once"]
    # A stale record for a PID now reused is not taken for that process's end.
    assert result["alive_told_early"] == []
    assert result["alive_exit_code"] == -9
