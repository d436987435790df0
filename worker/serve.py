"""`worker serve`: start the executor and the API, watch both, stop both.

This process only supervises. Signals become events on a self-pipe and are
handled in one loop together with the children's exits and the API's status
messages.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess

from worker.api.process import FAILED, READY, start_api
from worker.config import ServeConfig
from worker.executor.process import start_executor

# Beyond the executor's own kill grace, how long children get to exit cleanly.
STOP_MARGIN = 10.0


class _SignalEvents:
    """Turns SIGINT/SIGTERM/SIGHUP into bytes on a socket ``wait`` can watch."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }

    def _on_signal(self, signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            self._writer.send(bytes([signum]))

    def take(self) -> list[int]:
        try:
            return list(self.reader.recv(64))
        except BlockingIOError:
            return []

    def close(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self.reader.close()
        self._writer.close()


def serve(config: ServeConfig, say: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """Run until a stop signal or a child's death; return the exit status."""
    ctx = multiprocessing.get_context("spawn")
    events = _SignalEvents()
    api_end, executor_end = ctx.Pipe(duplex=True)
    status_in, status_out = ctx.Pipe(duplex=False)
    executor = start_executor(ctx, executor_end, config.executor)
    api = start_api(ctx, api_end, status_out, config.api)
    # Only the children may hold the pipe ends, or neither would see the
    # other hang up.
    for conn in (api_end, executor_end, status_out):
        conn.close()
    try:
        return _supervise(executor, api, status_in, events, say=say, warn=warn)
    finally:
        _stop((api, executor), config.executor.kill_grace + STOP_MARGIN)
        events.close()
        status_in.close()


def _supervise(
    executor: SpawnProcess,
    api: SpawnProcess,
    status: Connection,
    events: _SignalEvents,
    *,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> int:
    watched: list[object] = [executor.sentinel, api.sentinel, status, events.reader]
    while True:
        ready = wait(watched)  # type: ignore[arg-type]
        if events.reader in ready and events.take():
            return 0
        if status in ready:
            try:
                kind, text = status.recv()
            except (EOFError, OSError):
                watched.remove(status)
                continue
            if kind == READY:
                say(f"worker listening on {text} (api pid {api.pid}, executor pid {executor.pid})")
            elif kind == FAILED:
                warn(text)
                return 1
        if executor.sentinel in ready:
            warn(f"the executor process exited unexpectedly (exit code {executor.exitcode})")
            return 1
        if api.sentinel in ready:
            warn(f"the API process exited unexpectedly (exit code {api.exitcode})")
            return 1


def _stop(processes: tuple[SpawnProcess, ...], timeout: float) -> None:
    """SIGTERM every live child, wait, SIGKILL whatever is left."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
