"""What isolation this host allows, found out for real at start.

Nothing is assumed: the executor launches a probe job through the spawner
with each namespace it would use, and only what worked is used. What is
missing, and why, is said in the start-up line and in every job's status.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner

PROBE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HostIsolation:
    multi_user: bool  # each user's jobs as a uid of their own (the server is root)
    namespaces: bool  # PID and mount namespaces for every job
    network_none: bool  # "network": "none" can be given
    missing: tuple[str, ...] = ()  # what is not applied, and why

    def describe(self, cgroups: str) -> str:
        users = "a uid per user" if self.multi_user else "the server's own uid (single-tenant)"
        spaces = "PID and mount namespaces" if self.namespaces else "no namespaces"
        network = "network none available" if self.network_none else "host network only"
        line = f"jobs: {users}, {spaces}, {network}, {cgroups}"
        return line + "".join(f"; {why}" for why in self.missing)


async def detect(spawner: Spawner, want_namespaces: bool) -> HostIsolation:
    root = os.geteuid() == 0
    missing: list[str] = []
    if not root:
        missing.append("single-tenant: not running as root, so jobs cannot get uids of their own")
    namespaces = network = False
    if not want_namespaces:
        missing.append("namespaces turned off (--no-namespaces)")
    elif not root:
        missing.append("no namespaces: not running as root")
    else:
        refused = await _probe(spawner, Launch(_TRUE, _ENV, b"/", None, None, True, True))
        namespaces = refused is None
        if refused is not None:
            missing.append(f"no PID and mount namespaces: {refused}")
    if root:
        refused = await _probe(spawner, Launch(_TRUE, _ENV, b"/", None, None, network_none=True))
        network = refused is None
        if refused is not None:
            missing.append(f'no "network": "none": {refused}')
    return HostIsolation(root, namespaces, network, tuple(missing))


_TRUE = (b"true",)
_ENV = ((b"PATH", b"/usr/local/bin:/usr/bin:/bin"),)


async def _probe(spawner: Spawner, launch: Launch) -> str | None:
    """None if a job launched this way runs; else why not."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            pid, pidfd = await spawner.launch(launch, [stdin_r, out_w, report_w], None)
        except OSError as exc:
            return exc.strerror or str(exc)
        for fd in (stdin_r, out_w, report_w):
            os.close(fd)
        stdin_r = out_w = report_w = -1
        loop = asyncio.get_running_loop()
        report = await asyncio.wait_for(
            loop.run_in_executor(None, _read_all, report_r), PROBE_TIMEOUT
        )
        await asyncio.wait_for(loop.run_in_executor(None, os.waitpid, pid, 0), PROBE_TIMEOUT)
        os.close(pidfd)
        first = report.split(b"\n", 1)[0].decode("ascii", "replace")
        if first.startswith("E"):
            code, _, phase = first[1:].partition(" ")
            return f"{phase}: {os.strerror(int(code)) if code.isdigit() else code}"
        return None
    finally:
        for fd in (stdin_r, stdin_w, out_r, out_w, report_r, report_w):
            if fd >= 0:
                os.close(fd)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data
