"""The ceiling over the server's job starts: a loop doing only each job's
kernel work, as the server does it, and nothing else.

Each job is made the server's way, through its own code: its cgroups made
with the default limits (``CgroupThread``, on the thread the server uses),
/bin/true started by the server's spawner into them, as another uid and in
namespaces of its own where the server's jobs get those, its start report
read, its exit awaited on its pidfd, its counters read, and its cgroups
removed. No TLS, no HTTP, no pipe to an executor, no records: a server can
only start fewer jobs than this, so a target this misses is out of reach of
any server on this host with these protections.

Run in a fresh interpreter of its own (``procs.run_isolated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import replace

from bench.isolation import launch_of, reaped, start
from worker.executor import reports
from worker.executor.cgroups import CgroupTree, JobCgroup
from worker.executor.changes import changed
from worker.executor.controllers import Controllers
from worker.executor.jobcgroups import CgroupThread
from worker.executor.launcher import Spawner
from worker.executor.limits import host_defaults

EMPTIED = 5.0  # seconds a job's cgroup may take to empty once it has exited


def ceiling_rate(seconds: float, in_flight: int, uid: bool, namespaces: bool) -> tuple[float, str]:
    """Jobs started per second, ``in_flight`` at a time; and the limits
    line of the cgroup controllers used, as a server's start-up line has it."""
    try:
        return asyncio.run(_ceiling(seconds, in_flight, uid, namespaces))
    except ExceptionGroup as group:  # one loop's failure, not "1 sub-exception"
        raise group.exceptions[0] from None


async def _ceiling(
    seconds: float, in_flight: int, uid: bool, namespaces: bool
) -> tuple[float, str]:
    async with contextlib.AsyncExitStack() as stack:
        # Made as a server makes them (server.py), undone in reverse order.
        tree, _ = CgroupTree.detect()
        if tree is not None:
            stack.callback(tree.remove)
        controllers = Controllers.detect(tree)
        stack.callback(controllers.remove)
        cgroups = CgroupThread(tree, controllers)
        stack.callback(cgroups.close)
        stack.push_async_callback(cgroups.idle)
        spawner = Spawner.start()
        stack.callback(spawner.close)

        limits = host_defaults()
        launch = launch_of(uid, namespaces)
        ids = itertools.count(1)
        started = 0
        end = time.perf_counter() + seconds

        async def one() -> None:
            made = await cgroups.make(next(ids), limits, "/")
            try:
                job = replace(launch, join=made.join)
                pid, pidfd, report = await start(spawner, job, made.fd)
                reaped(pid, pidfd, await _report(report, pidfd))
                if made.controls is not None:
                    made.controls.usage()  # its OOM counter is read only after a SIGKILL
            finally:
                if made.fd is not None:
                    os.close(made.fd)
                await _emptied(made.cgroup)
                cgroups.remove(made.controls, made.cgroup)

        async def loop() -> None:
            nonlocal started
            while time.perf_counter() < end:
                await one()
                started += 1

        begin = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(in_flight):
                group.create_task(loop())
        rate = started / (time.perf_counter() - begin)
    return rate, controllers.describe()


async def _report(fd: int, pidfd: int) -> bytes:
    """The job's start report, read as the server reads it, once the job
    has exited (its pidfd readable)."""
    loop = asyncio.get_running_loop()
    lines: list[bytes] = []
    eof: asyncio.Future[None] = loop.create_future()
    reports.read_lines(loop, fd, lambda line: lines.append(line.encode()), _settler(eof))
    await eof
    exited: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pidfd, _settler(exited))
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
    return b"\n".join(lines)


def _settler(future: asyncio.Future[None]) -> Callable[[], None]:
    """A callback settling ``future``, if its waiter was not cancelled
    meanwhile by another loop's failure."""

    def settle() -> None:
        if not future.done():
            future.set_result(None)

    return settle


async def _emptied(cgroup: JobCgroup | None) -> None:
    """Its processes out of its cgroup (they leave it as they exit), woken
    by the kernel's notice as the server's kills are."""
    deadline = time.monotonic() + EMPTIED
    while cgroup is not None and cgroup.populated():
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"{cgroup.path} still has processes {EMPTIED:g} s after its end")
        await changed(cgroup.path / "cgroup.events", left)
