"""The isolation baseline: a Python loop isolating each job itself, by the
same means as worker (clone3 into new PID and mount namespaces, /proc and a
tmpfs /tmp mounted there, the command forked as another uid with no groups,
reaped by the namespace's init), and what each step costs.

Run in a fresh interpreter of its own (``procs.run_isolated``), as root.
"""

from __future__ import annotations

import os
import time

from worker.executor import clone

BATCH = 32
NOBODY = 65534
_ENV = {"PATH": "/usr/bin:/bin"}


def _job(namespaces: bool, mounts: bool, uid: bool, network: bool) -> int:
    """Start one /bin/true so isolated; our child's PID (its init, or it)."""
    flags = clone.CLONE_NEWPID | clone.CLONE_NEWNS if namespaces else 0
    if network:
        flags |= clone.CLONE_NEWNET
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    pid, pidfd = clone.clone3(flags)
    if pid == 0:
        try:
            if mounts:
                clone.mount(None, "/", None, clone.MS_REC | clone.MS_PRIVATE)
                clone.mount("proc", "/proc", "proc", clone.MS_NOSUID | clone.MS_NODEV)
                clone.mount("tmpfs", "/tmp", "tmpfs", clone.MS_NOSUID | clone.MS_NODEV)
            main = clone.clone3(0)[0] if namespaces else 0
            if main == 0:
                os.setsid()
                os.dup2(stdin_r, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                if uid:
                    os.setgroups([])
                    os.setresgid(NOBODY, NOBODY, NOBODY)
                    os.setresuid(NOBODY, NOBODY, NOBODY)
                os.execve("/bin/true", ["true"], _ENV)
            while True:  # the init: reap until nothing is left
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    os._exit(0)
        finally:
            os._exit(127)
    for fd in (pidfd, stdin_r, out_w, stdin_w, out_r):
        os.close(fd)
    return pid


def isolated_rate(seconds: float) -> float:
    """Jobs started per second with everything worker applies as root."""
    return _rate(seconds, namespaces=True, mounts=True, uid=True, network=False)


def _rate(seconds: float, **steps: bool) -> float:
    started = 0
    begin = time.perf_counter()
    while time.perf_counter() - begin < seconds:
        batch = [_job(**steps) for _ in range(BATCH)]
        for pid in batch:
            os.waitpid(pid, 0)
        started += len(batch)
    return started / (time.perf_counter() - begin)


def step_costs(seconds: float = 1.5) -> dict[str, float]:
    """Microseconds each isolation step adds to starting one job, measured
    as the difference of start rates with and without it."""
    plain = 1e6 / _rate(seconds, namespaces=False, mounts=False, uid=False, network=False)
    uid = 1e6 / _rate(seconds, namespaces=False, mounts=False, uid=True, network=False)
    spaces = 1e6 / _rate(seconds, namespaces=True, mounts=False, uid=True, network=False)
    mounts = 1e6 / _rate(seconds, namespaces=True, mounts=True, uid=True, network=False)
    network = 1e6 / _rate(seconds, namespaces=True, mounts=True, uid=True, network=True)
    return {
        "a job, no isolation (clone, exec)": plain,
        "a uid of its own": uid - plain,
        "PID and mount namespaces (and an init)": spaces - uid,
        "its own /proc and /tmp": mounts - spaces,
        "a network namespace": network - mounts,
    }
