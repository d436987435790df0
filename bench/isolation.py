"""The isolation baseline: a loop starting each job through worker's own
spawner (the compiled one where it was built) with the same isolation as the
server's jobs (PID and mount namespaces, /proc and a tmpfs /tmp mounted
there, the command run as another uid with no groups under the namespace's
init), and what each step costs. No server, no HTTP, no cgroups: what is
left of the server's figure is the server's own work.

``floor_rate`` adds each job's cgroups, made, joined, read and removed as
the server does it: the kernel work of a job as the server applies it,
driven by the thinnest loop, so the most a server could start here.

Run in a fresh interpreter of its own (``procs.run_isolated``), as root.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace

from worker.executor.cgroups import CgroupTree
from worker.executor.controllers import Controllers
from worker.executor.jobcgroups import CgroupThread
from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner
from worker.executor.limits import host_defaults
from worker.protocol import Limits

BATCH = 32
FLOOR_IN_FLIGHT = 16  # as many as the server's figure has clients
EMPTIED = 5.0  # seconds a job's cgroup may take to empty once its init is reaped
NOBODY = 65534
_ENV = ((b"PATH", b"/usr/bin:/bin"),)


def _launch(uid: bool, namespaces: bool, network: bool) -> Launch:
    who = NOBODY if uid else None
    return Launch((b"/bin/true",), _ENV, b"/", who, who, namespaces, namespaces, network)


async def _start(
    spawner: Spawner, launch: Launch, cgroup_fd: int | None = None
) -> tuple[int, int, int]:
    """One job started; (its PID, its pidfd, our end of its report pipe)."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, pidfd = await spawner.launch(launch, [stdin_r, out_w, report_w], cgroup_fd)
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w, report_w):
            os.close(fd)
    return pid, pidfd, report_r


def _settle(pid: int, pidfd: int, report: int) -> None:
    """Its start reported (EOF, or the init's lines), and it reaped: ours,
    since the spawner's clones are its parent's."""
    while os.read(report, 4096):
        pass
    os.close(report)
    os.close(pidfd)
    os.waitpid(pid, 0)


async def _settled(pid: int, pidfd: int, report: int) -> None:
    """``_settle`` without blocking the loop."""
    while True:
        await _readable(report)
        if not os.read(report, 4096):
            break
    await _readable(pidfd)  # once it has exited
    _settle(pid, pidfd, report)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _rate(seconds: float, launch: Launch) -> float:
    spawner = Spawner.start()
    try:
        started = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < seconds:
            batch = [await _start(spawner, launch) for _ in range(BATCH)]
            for pid, pidfd, report in batch:
                _settle(pid, pidfd, report)
            started += len(batch)
        return started / (time.perf_counter() - begin)
    finally:
        spawner.close()


async def _floor(seconds: float, namespaces: bool, cgroups: bool) -> float:
    tree = CgroupTree.detect()[0] if cgroups else None
    controllers = Controllers.detect(tree) if tree is not None else None
    thread = CgroupThread(tree, controllers)
    limits = host_defaults() if controllers is not None else Limits()
    launch = _launch(os.geteuid() == 0, namespaces, False)  # as a server switches uids
    spawner = Spawner.start()
    ids = iter(range(1, 1 << 62))
    started = 0
    end = time.perf_counter() + seconds

    async def one() -> None:
        made = await thread.make(next(ids), limits, "/")
        try:
            pid, pidfd, report = await _start(spawner, replace(launch, join=made.join), made.fd)
        finally:
            if made.fd is not None:
                os.close(made.fd)
        await _settled(pid, pidfd, report)
        if made.controls is not None:
            made.controls.usage()  # the OOM counter is read only after a SIGKILL
        if made.cgroup is not None:
            deadline = time.monotonic() + EMPTIED
            while made.cgroup.populated() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
        thread.remove(made.controls, made.cgroup)

    async def loop() -> None:
        nonlocal started
        while time.perf_counter() < end:
            await one()
            started += 1

    begin = time.perf_counter()
    try:
        await asyncio.gather(*(loop() for _ in range(FLOOR_IN_FLIGHT)))
        return started / (time.perf_counter() - begin)
    finally:
        spawner.close()
        await thread.idle()
        thread.close()
        if controllers is not None:
            controllers.remove()
        if tree is not None:
            tree.remove()


def floor_rate(seconds: float, namespaces: bool, cgroups: bool) -> float:
    """Jobs started per second by a bare loop doing each job's kernel work
    as the server does: a uid of its own (as root), the namespaces and the cgroups
    (with the default limits) if ``namespaces`` and ``cgroups``."""
    return asyncio.run(_floor(seconds, namespaces, cgroups))


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
