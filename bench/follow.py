"""Follow latency: 1,000 followers of one job that writes a line every 10 ms.

The job writes ``ready``, then ``<seq> <time.time()>`` per line after a go
on its stdin; a
line's latency is when the chunk that completed it reached a follower minus
the time in it (one clock, one machine). The followers are asyncio protocols
spread over a few client processes; each is subscribed (its reply head is in)
before the go. As in tests/integration/test_live.py, in leaner form.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench import CA
from bench.clients import run_clients
from bench.context import Bench
from bench.httpload import get_request, percentile
from bench.report import Figure, Target
from worker import chunked

FOLLOWERS = 1000
PROCESSES = 2
LINES = 200
# The first line gets every follower its reply head (worker sends the head
# with the first bytes), so a follower that has it is subscribed.
TICKER = f"""
import sys, time
print("ready", flush=True)
sys.stdin.readline()
for i in range({LINES}):
    print(i, repr(time.time()), flush=True)
    time.sleep(0.01)
"""


@dataclass(frozen=True)
class FollowSpec:
    port: int
    path: str
    followers: int


class _Follower(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[int] = loop.create_future()
        self.first: asyncio.Future[None] = loop.create_future()
        self.end: asyncio.Future[None] = loop.create_future()
        self.raw = bytearray()  # until the head is complete
        self.decoder = chunked.Decoder()
        self.body = bytearray()
        self.arrivals: list[tuple[float, int]] = []  # (time, body bytes so far)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.raw += data
        if not self.head.done():
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head.set_result(int(self.raw[9:12]))
            del self.raw[: end + 4]
        pieces = self.decoder.feed(bytes(self.raw))
        self.raw.clear()
        if pieces:
            self.body += b"".join(pieces)
            self.arrivals.append((now, len(self.body)))
            if not self.first.done():
                self.first.set_result(None)
        if self.decoder.done and not self.end.done():
            self.end.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.head, self.first, self.end):
            if not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def latencies(self) -> list[float]:
        ends: list[tuple[int, float]] = []
        position = 0
        for line in bytes(self.body).split(b"\n")[:-1]:
            position += len(line) + 1
            if line != b"ready":
                ends.append((position, float(line.split()[1])))
        found: list[float] = []
        index = 0
        for arrived, total in self.arrivals:
            while index < len(ends) and ends[index][0] <= total:
                found.append(arrived - ends[index][1])
                index += 1
        return found


async def _followers(
    spec: FollowSpec, ready: Callable[[], Awaitable[None]]
) -> tuple[list[float], int, list[float]]:
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context(cafile=str(CA))
    gate = asyncio.Semaphore(32)

    async def connect() -> _Follower:
        async with gate:
            transport, follower = await loop.create_connection(
                _Follower, "127.0.0.1", spec.port, ssl=context, server_hostname="localhost"
            )
            transport.write(get_request(spec.path))
            status = await follower.head
            if status != 200:
                raise RuntimeError(f"follow refused: {status} {bytes(follower.raw[:300])!r}")
            await follower.first  # "ready": subscribed
            return follower

    followers = await asyncio.gather(*(connect() for _ in range(spec.followers)))
    await ready()
    lags: list[float] = []
    probe = asyncio.create_task(_loop_lag(lags))
    await asyncio.wait_for(asyncio.gather(*(f.end for f in followers)), 120)
    probe.cancel()
    complete = sum(f.body.count(b"\n") == LINES + 1 for f in followers)
    latencies = [value for f in followers for value in f.latencies()]
    return latencies, complete, lags


async def _loop_lag(lags: list[float]) -> None:
    """How late this client's own loop wakes up: the share of a latency that
    is the client's, not the server's."""
    while True:
        due = time.monotonic() + 0.005
        await asyncio.sleep(0.005)
        lags.append(time.monotonic() - due)


def follow_latency(bench: Bench) -> Figure:
    figure = Figure(
        "follow_p99_ms",
        f"follow latency p99, {FOLLOWERS:,} followers, a line every 10 ms",
        "ms",
        Target("<=", 100),
    )
    http = bench.client
    p50s: list[float] = []
    lags: list[float] = []

    def one_run() -> float:
        # The system python3: a job runs as its own uid and may not read ours.
        job = http.run_job("python3", "-c", TICKER)
        path = f"/jobs/{job}/out?follow=true"
        specs = [FollowSpec(bench.server.port, path, FOLLOWERS // PROCESSES)] * PROCESSES

        def go() -> None:
            http.request("POST", f"/jobs/{job}/stdin", raw=b"go\n")

        results = run_clients(_followers, specs, on_ready=go)
        complete = sum(done for _, done, _ in results)
        if complete != FOLLOWERS:
            raise RuntimeError(f"{FOLLOWERS - complete} followers missed lines")
        latencies = [value for values, _, _ in results for value in values]
        http.wait_final(job)
        p50s.append(percentile(latencies, 0.5) * 1000)
        lags.append(percentile([lag for _, _, some in results for lag in some], 0.99) * 1000)
        return percentile(latencies, 0.99) * 1000

    figure.worker_runs = [one_run() for _ in range(bench.runs)]
    figure.extra["p50_ms"] = p50s
    figure.extra["client_loop_lag_p99_ms"] = lags
    figure.note = (
        f"{PROCESSES} client processes x {FOLLOWERS // PROCESSES} followers, {LINES} lines "
        f"each, every line checked at every follower; p50 {statistics.median(p50s):.1f} ms; "
        f"the clients' own event-loop lag p99 {statistics.median(lags):.1f} ms"
    )
    return figure
