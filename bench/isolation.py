"""The isolation baseline: a loop starting each job through worker's own
spawner (the compiled one where it was built) with the same isolation as the
server's jobs (PID and mount namespaces, /proc and a tmpfs /tmp mounted
there, the command run as another uid with no groups under the namespace's
init), and what each step costs. No server, no HTTP, no cgroups: what is
left of the server's figure is the server's own work.

Run in a fresh interpreter of its own (``procs.run_isolated``), as root.
``bench/ceiling.py`` starts its jobs the same way, with their cgroups.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time

from worker.executor import reports
from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner

BATCH = 32
NOBODY = 65534
_ENV = ((b"PATH", b"/usr/bin:/bin"),)


def launch_of(uid: bool, namespaces: bool, network: bool = False) -> Launch:
    """/bin/true, as another uid (nobody) if ``uid``, in namespaces of its
    own if ``namespaces``."""
    who = NOBODY if uid else None
    return Launch((b"/bin/true",), _ENV, b"/", who, who, namespaces, namespaces, network)


async def start(
    spawner: Spawner, launch: Launch, cgroup_fd: int | None = None
) -> tuple[int, int, int]:
    """One job started; (its PID, its pidfd, our end of its report pipe)."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, pidfd = await spawner.launch(launch, [stdin_r, out_w, report_w], cgroup_fd)
    except BaseException:
        os.close(report_r)
        raise
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w, report_w):
            os.close(fd)
    return pid, pidfd, report_r


def reaped(pid: int, pidfd: int, report: bytes) -> None:
    """Reap a job that has exited (ours: the spawner's clones are its
    parent's); RuntimeError if its ``report`` says it never started."""
    os.close(pidfd)
    os.waitpid(pid, 0)
    failure = next((line for line in report.split(b"\n") if line.startswith(b"E")), None)
    if failure is not None:
        why = reports.describe(failure[1:].decode("ascii", "replace"), "/bin/true", b"/")
        raise RuntimeError(f"a job could not start: {why}")


def _settle(pid: int, pidfd: int, report: int) -> None:
    """Its start reported (EOF, or the init's lines), and it reaped."""
    data = b"".join(iter(functools.partial(os.read, report, 4096), b""))
    os.close(report)
    reaped(pid, pidfd, data)


async def _rate(seconds: float, launch: Launch) -> float:
    spawner = Spawner.start()
    try:
        started = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < seconds:
            batch = [await start(spawner, launch) for _ in range(BATCH)]
            for pid, pidfd, report in batch:
                _settle(pid, pidfd, report)
            started += len(batch)
        return started / (time.perf_counter() - begin)
    finally:
        spawner.close()


def rate(seconds: float, uid: bool, namespaces: bool, network: bool = False) -> float:
    return asyncio.run(_rate(seconds, launch_of(uid, namespaces, network)))


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
