"""`worker serve`: start the executor and the API, watch both, stop both.

This process only supervises. Signals become events on a self-pipe and are
handled in one loop together with the children's exits and the API's status
messages. It is a child subreaper (and may be PID 1 in a container), so
orphans end up here: it reaps them, and when it stops, it kills whatever of
the jobs is still about.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess

import psutil

from worker import notify as systemd
from worker.api.process import bind, start_api
from worker.config import ServeConfig
from worker.errors import WorkerError
from worker.executor import cgroups
from worker.executor.killer import kill_all_now
from worker.executor.process import start_executor
from worker.executor.targets import DescendantsTarget
from worker.linux import (
    SERVER_OOM_SCORE_ADJ,
    become_subreaper,
    not_dumpable,
    oom_score_adj,
    reap_exited,
)
from worker.supervisor import STOP_SIGNALS, Event, Exited, Said, Signalled, supervise

log = logging.getLogger("worker.serve")

# Beyond the executor's own kill grace, how long children get to exit cleanly.
STOP_MARGIN = 10.0


class _SignalEvents:
    """Turns signals into bytes on a socket that ``wait`` can watch."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (*STOP_SIGNALS, signal.SIGCHLD)
        }

    def _on_signal(self, signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            self._writer.send(bytes([signum]))

    def take(self) -> set[int]:
        try:
            return set(self.reader.recv(4096))
        except BlockingIOError:
            return set()

    def close(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self.reader.close()
        self._writer.close()


class _Children:
    def __init__(self, executor: SpawnProcess, api: SpawnProcess) -> None:
        self.executor = executor
        self.api = api

    def reap_orphans(self) -> None:
        """Reap every exited child; ours through multiprocessing, so it keeps
        their exit codes."""
        reap_exited(self._claim)

    def _claim(self, pid: int) -> bool | None:
        for process in (self.executor, self.api):
            if process.pid == pid:
                if process.exitcode is not None:
                    return False  # already reaped; never spin
                process.join(0)
                return process.exitcode is not None
        return None


def serve(config: ServeConfig, say: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """Run until a stop signal or a child's death; return the exit status."""
    try:
        _preflight(config)
    except WorkerError as exc:
        warn(exc.message)  # said as the processes would say it
        return 1
    become_subreaper()
    not_dumpable()
    oom_score_adj(SERVER_OOM_SCORE_ADJ)
    ctx = multiprocessing.get_context("spawn")
    events = _SignalEvents()
    api_end, executor_end = ctx.Pipe(duplex=True)
    status_in, status_out = ctx.Pipe(duplex=False)
    children = _Children(
        start_executor(ctx, executor_end, status_out, config.executor),
        start_api(ctx, api_end, status_out, config.api),
    )
    # Only the children may hold the pipe ends, or neither would see the
    # other hang up.
    for conn in (api_end, executor_end, status_out):
        conn.close()
    grace = config.executor.kill_grace
    status = 1
    actions = _Real(children, say, warn, grace)
    pids = {"api": children.api.pid, "executor": children.executor.pid}
    try:
        status = supervise(_events(children, status_in, events), actions, pids)
    finally:
        systemd.notify(systemd.STOPPING, "STATUS=stopping every job")
        _stop(children, grace + STOP_MARGIN)
        _kill_leftovers(children, grace)
        events.close()
        status_in.close()
    if status == 0:
        for name, process in (("API", children.api), ("executor", children.executor)):
            if process.exitcode != 0:
                warn(f"the {name} process did not stop cleanly (exit code {process.exitcode})")
                status = 1
    log.info("stopped (exit status %d)", status, extra={"event": "stopped"})
    return status


def _preflight(config: ServeConfig) -> None:
    """What would stop the server at once, found before any process starts,
    so that it is said in one line (the API process checks again)."""
    from worker import users

    users.load(config.api.users_file)
    bind(config.api.host, config.api.port).close()


class _Real:
    """The supervisor's actions on the real processes."""

    def __init__(
        self,
        children: _Children,
        say: Callable[[str], None],
        warn: Callable[[str], None],
        grace: float,
    ) -> None:
        self._children = children
        self.say, self.warn = say, warn
        self._grace = grace

    def ready(self, url: str) -> None:
        # Both are up and the API accepts requests: now, not at exec.
        systemd.notify(systemd.READY, f"STATUS=listening on {url}")

    def reap_orphans(self) -> None:
        self._children.reap_orphans()

    def kill_leftovers(self) -> None:
        _kill_leftovers(self._children, self._grace)


def _events(children: _Children, status: Connection, signals: _SignalEvents) -> Iterator[Event]:
    """The real children's events, as they come: signals first, then status
    messages, then exits (checked after every wake-up)."""
    watched: list[object] = [children.executor.sentinel, children.api.sentinel, status]
    watched.append(signals.reader)
    while True:
        ready = wait(watched)  # type: ignore[arg-type]
        if signals.reader in ready:
            received = signals.take()
            if received:
                yield Signalled(frozenset(received))
        if status in ready:
            try:
                kind, role, text = status.recv()
            except (EOFError, OSError):
                watched.remove(status)
            else:
                yield Said(kind, role, text)
        for role, process in (("executor", children.executor), ("api", children.api)):
            if not process.is_alive():
                yield Exited(role, process.exitcode)


def _stop(children: _Children, timeout: float) -> None:
    """SIGTERM both children, wait, SIGKILL whatever is left."""
    processes = (children.api, children.executor)
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _kill_leftovers(children: _Children, grace: float) -> None:
    """Job processes that outlived the executor are ours now (subreaper):
    TERM, grace, KILL, and reap them, with the kill engine the executor
    uses. If the executor died, its cgroup tree is dead too (its lock is
    free): whatever left our process tree is found there. Everything we
    started goes, except the API if it still runs and multiprocessing's
    own resource tracker, which exits with us."""
    keep = {children.api.pid} if children.api.is_alive() else set()
    keep.add(getattr(resource_tracker._resource_tracker, "_pid", None))
    trees = []
    if children.executor.exitcode not in (None, 0):
        where = cgroups.home()
        trees = cgroups.dead_trees(where) if where is not None else []
    target = DescendantsTarget(psutil.Process(), {pid for pid in keep if pid}, trees)
    try:
        kill_all_now(target, grace, reap=children.reap_orphans)
    finally:
        for tree in trees:
            tree.remove()
