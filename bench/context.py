"""What every figure gets: the main server, a client for it, how many runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

from bench.procs import Https, Server, start_worker

T = TypeVar("T")

# Every worker server of the benchmark runs with the rate limit off, and
# lets one user's load run at once (not the default quota of running jobs).
COMMON_FLAGS = ("--rate-limit-ms", "0", "--max-running-per-user", "100000")


@dataclass
class Bench:
    runs: int
    flags: tuple[str, ...] = ()  # for every server it starts (the main one too)
    started: list[Server] = field(default_factory=list)
    main: Server | None = None
    http: Https | None = None
    status_job: int = 0
    startup: str = ""  # the main server's start-up line

    def worker(self, *flags: str) -> Server:
        """A `worker serve` of our own, stopped at the end if not before."""
        server = start_worker(*COMMON_FLAGS, *self.flags, *flags)
        self.started.append(server)
        return server

    @contextlib.contextmanager
    def own_worker(self, *flags: str) -> Iterator[tuple[Server, Https]]:
        server = self.worker(*flags)
        http = Https(server.port)
        try:
            yield server, http
        finally:
            http.close()
            server.stop()

    def jobs_get(self, what: str) -> bool:
        """Whether the main server's start-up line says its jobs get
        ``what`` ("a uid per user", "PID and mount namespaces"): an item of
        its "jobs: ..." list, not the reason that one is missing."""
        items = self.startup.partition("jobs: ")[2].partition(";")[0]
        return what in items.split(", ")

    def runs_at_least(self, minimum: int) -> int:
        return max(self.runs, minimum)

    def server_processes(self) -> dict[str, int]:
        """The main server's API, executor and compiled spawner processes, by
        name (the jobs are the executor's children too; the spawner is the
        one by that name)."""
        found = {"API": self.server.api_pid, "executor": self.server.executor_pid}
        for child in psutil.Process(self.server.executor_pid).children():
            with contextlib.suppress(psutil.Error):
                if child.name() == "worker-spawn":
                    found["spawner"] = child.pid
        return found

    @property
    def server(self) -> Server:
        assert self.main is not None
        return self.main

    @property
    def client(self) -> Https:
        assert self.http is not None
        return self.http

    def stop_all(self) -> None:
        if self.http is not None:
            self.http.close()
        for server in reversed(self.started):
            server.stop()


def alternate(
    runs: int, first: Callable[[], T], second: Callable[[], T]
) -> tuple[list[T], list[T]]:
    """``runs`` of each, interleaved, so drift hits both sides alike."""
    a: list[T] = []
    b: list[T] = []
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return a, b
