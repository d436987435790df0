"""The isolation baseline: a loop starting each job through worker's own
spawner (the compiled one where it was built) with the same isolation as the
server's jobs (PID and mount namespaces, /proc and a tmpfs /tmp mounted
there, the command run as another uid with no groups under the namespace's
init), and what each step costs. No server, no HTTP, no cgroups: what is
left of the server's figure is the server's own work.

Run in a fresh interpreter of its own (``procs.run_isolated``), as root.
"""

from __future__ import annotations

import asyncio
import os
import time

from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner

BATCH = 32
NOBODY = 65534
_ENV = ((b"PATH", b"/usr/bin:/bin"),)


def _launch(uid: bool, namespaces: bool, network: bool) -> Launch:
    who = NOBODY if uid else None
    return Launch((b"/bin/true",), _ENV, b"/", who, who, namespaces, namespaces, network)


async def _start(spawner: Spawner, launch: Launch) -> tuple[int, int]:
    """One job started; (its PID, our end of its report pipe)."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, pidfd = await spawner.launch(launch, [stdin_r, out_w, report_w], None)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w, report_w):
            os.close(fd)
    os.close(pidfd)
    return pid, report_r


def _settle(pid: int, report: int) -> None:
    """Its start reported (EOF, or the init's lines), and it reaped: ours,
    since the spawner's clones are its parent's."""
    while os.read(report, 4096):
        pass
    os.close(report)
    os.waitpid(pid, 0)


async def _rate(seconds: float, launch: Launch) -> float:
    spawner = Spawner.start()
    try:
        started = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < seconds:
            batch = [await _start(spawner, launch) for _ in range(BATCH)]
            for pid, report in batch:
                _settle(pid, report)
            started += len(batch)
        return started / (time.perf_counter() - begin)
    finally:
        spawner.close()


def rate(seconds: float, uid: bool, namespaces: bool, network: bool = False) -> float:
    return asyncio.run(_rate(seconds, _launch(uid, namespaces, network)))


def isolated_rate(seconds: float) -> float:
    """Jobs started per second with everything worker applies as root."""
    return rate(seconds, uid=True, namespaces=True)


def step_costs(seconds: float = 1.5) -> dict[str, float]:
    """Microseconds each isolation step adds to starting one job, measured
    as the difference of start rates with and without it."""
    plain = 1e6 / rate(seconds, uid=False, namespaces=False)
    uid = 1e6 / rate(seconds, uid=True, namespaces=False)
    spaces = 1e6 / rate(seconds, uid=True, namespaces=True)
    network = 1e6 / rate(seconds, uid=True, namespaces=True, network=True)
    return {
        "a job, no isolation (the spawner's clone, exec)": plain,
        "a uid of its own": uid - plain,
        "PID and mount namespaces, its /proc and /tmp, an init": spaces - uid,
        "a network namespace": network - spaces,
    }
