"""A job the spawner started but the executor cannot track is killed, never
left running behind a launch that failed or was given up.

Each case runs in a process of its own: it fills that process's descriptor
table, and the spawner's clones are that process's children."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from worker.executor.launcher import native_spawner

SCRIPT = r"""
import asyncio, errno, json, os, sys
import psutil
from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner

native, case = sys.argv[1] == "compiled", sys.argv[2]
SLEEP = Launch((b"/bin/sleep", b"60"), ((b"PATH", b"/usr/bin:/bin"),), b"/", None, None)

def ended_children():
    # Killed children stay zombies here (nobody reaps): their wait statuses.
    statuses = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return statuses
        if pid == 0:
            return statuses
        statuses.append(status)

async def main():
    spawner = Spawner.start(native)
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    error = None
    if case == "no descriptor left":
        fillers = []
        try:
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as exc:
            assert exc.errno == errno.EMFILE
        os.close(fillers.pop())  # for the launch's own use; none for the reply's pidfd
        try:
            await spawner.launch(SLEEP, [stdin_r, out_w, report_w], None)
        except OSError as exc:
            error = exc.errno
        for fd in fillers:
            os.close(fd)
    else:  # given up: cancelled before the reply came
        task = asyncio.ensure_future(spawner.launch(SLEEP, [stdin_r, out_w, report_w], None))
        await asyncio.sleep(0)  # sent
        task.cancel()
        # The reply comes anyway; wait until it has been handled.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            assert loop.time() < deadline, "the job was never killed"
            await asyncio.sleep(0.01)
    spawner.close()
    statuses = ended_children()
    for child in psutil.Process().children():  # left running (the bug): ours to stop
        child.kill()
    signals = [os.WTERMSIG(s) for s in statuses if os.WIFSIGNALED(s)]
    print(json.dumps({"error": error, "signals": signals}))

asyncio.run(main())
"""


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("case", ["no descriptor left", "given up"])
def test_a_started_job_that_cannot_be_tracked_is_killed(native: bool, case: str) -> None:
    if native and native_spawner() is None:
        pytest.skip("the compiled spawner was not built here (no C compiler at install)")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "compiled" if native else "python", case],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    if case == "no descriptor left":
        assert result["error"] == 24  # EMFILE, said as such
    assert result["signals"] == [9]  # the sleep, killed; nothing else of it left running
