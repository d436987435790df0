"""The machine's own ceilings, each run in a fresh interpreter of its own
(``procs.run_isolated``): plain Python doing what the worker does, minus the
worker."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time

import psutil

from bench.machine import busy_cpu_seconds
from worker.linux import become_subreaper

# sh and 99 sleeps: 100 processes in one new session.
TREE_SCRIPT = "for i in $(seq 99); do sleep 600 & done; wait"
TREE_SIZE = 100
BATCH = 64


def _popen(argv: list[str]) -> subprocess.Popen[bytes]:
    """The worker's pipes: stdin a pipe, stdout a pipe, stderr on stdout; a
    session of its own."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _close(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def popen_costs(seconds: float) -> tuple[float, float, float]:
    """Processes of /bin/true started per second by a Popen loop (reaped in
    batches of 64, inside the time), and per process started the machine's
    busy CPU time and the part of it that was the process's own (ms)."""
    started = 0
    busy = busy_cpu_seconds()
    own = _children_cpu()
    begin = time.perf_counter()
    while time.perf_counter() - begin < seconds:
        batch = [_popen(["/bin/true"]) for _ in range(BATCH)]
        for process in batch:
            process.wait()
            _close(process)
        started += len(batch)
    rate = started / (time.perf_counter() - begin)
    per = 1000 / started
    return rate, (busy_cpu_seconds() - busy) * per, (_children_cpu() - own) * per


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pipe_read_seconds(size: int, keep: bool = False) -> float:
    """Start `head -c SIZE /dev/zero` and read its pipe to the end; with
    ``keep``, hold every byte read (as worker does) rather than drop it."""
    begin = time.perf_counter()
    process = _popen(["head", "-c", str(size), "/dev/zero"])
    assert process.stdout is not None
    fd = process.stdout.fileno()
    total = 0
    kept: list[bytes] = []
    while data := os.read(fd, 1 << 20):
        total += len(data)
        if keep:
            kept.append(data)
    process.wait()
    elapsed = time.perf_counter() - begin
    _close(process)
    kept.clear()
    if total != size:
        raise RuntimeError(f"read {total} bytes, expected {size}")
    return elapsed


def tree_ready(leader: psutil.Process, size: int = TREE_SIZE, timeout: float = 20.0) -> list[int]:
    """Wait until ``leader`` has ``size - 1`` descendants; their PIDs and its."""
    deadline = time.monotonic() + timeout
    while True:
        children = leader.children(recursive=True)
        if len(children) >= size - 1:
            return [leader.pid, *(child.pid for child in children)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tree has {len(children) + 1} processes, not {size}")
        time.sleep(0.01)


def kill_tree_seconds() -> float:
    """`kill -TERM -PGID` (the same kill(2) call) of a 100-process tree in its
    own session, and waiting until all 100 are gone. We are a subreaper, so
    the orphaned sleeps come to us, and no children left means all gone."""
    if not become_subreaper():
        raise RuntimeError("cannot become a child subreaper")
    process = _popen(["sh", "-c", TREE_SCRIPT])
    pids = tree_ready(psutil.Process(process.pid))
    begin = time.perf_counter()
    os.killpg(process.pid, signal.SIGTERM)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    elapsed = time.perf_counter() - begin
    _close(process)
    if any(psutil.pid_exists(pid) for pid in pids):
        raise RuntimeError("a process of the tree is still there")
    return elapsed
