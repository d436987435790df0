"""A small HTTP/1.1 load generator: keep-alive connections over TLS.

Every connection sends one request, reads its whole reply and sends the next
(no pipelining). Three ways to pace it: as fast as replies come back for a
time window (throughput), one request per ``interval`` per connection
(latency under a light, fixed load), or a fixed number of requests in all.
Replies are parsed with as little Python as will do (a Content-Length body).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from bench import CA
from bench.clients import run_clients
from bench.procs import AUTH

WARMUP = 0.5  # seconds of load before the measured window


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n\r\n".encode()


def run_body(command: str, *args: str) -> bytes:
    """The JSON body of a POST /jobs/run."""
    return json.dumps({"command": command, "args": list(args)}).encode()


def post_request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True)
class LoadSpec:
    port: int
    request: bytes
    connections: int
    seconds: float = 3.0  # the measured window (throughput and paced modes)
    interval: float = 0.0  # > 0: paced, one request per interval per connection
    total: int = 0  # > 0: exactly this many requests from this process, then stop


@dataclass
class LoadResult:
    ok: int = 0  # 2xx replies within the window
    statuses: dict[int, int] = field(default_factory=dict)  # every reply, by status
    latencies: list[float] = field(default_factory=list)  # seconds, within the window
    window: float = 0.0  # seconds the window lasted
    lost: int = 0  # connections the server closed while we still used them
    cpu: float = 0.0  # CPU seconds the client processes used, while loading


class _Run:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.result = LoadResult()
        self.start_at = 0.0
        self.stop_at = float("inf")
        self.sent = 0
        self.active = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def may_send(self) -> bool:
        if self.spec.total:
            return self.sent < self.spec.total
        return time.monotonic() < self.stop_at

    def finished(self) -> None:
        self.active -= 1
        if self.active == 0 and not self.done.done():
            self.done.set_result(None)


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.next_at = 0.0
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)

    def send(self) -> None:
        if not self.open or self.transport is None or not self.run.may_send():
            self.stop()
            return
        self.run.sent += 1
        self.sent_at = time.monotonic()
        self.transport.write(self.run.spec.request)

    def stop(self) -> None:
        if self.open:
            self.open = False
            self.run.finished()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end]).lower()
            length = _content_length(head)
            if len(buffer) < end + 4 + length:
                return
            del buffer[: end + 4 + length]
            self.replied(int(head[9:12]))

    def replied(self, status: int) -> None:
        now = time.monotonic()
        run, result = self.run, self.run.result
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if run.start_at <= now <= run.stop_at:
            if 200 <= status < 300:
                result.ok += 1
            if self.sent_at >= run.start_at:
                result.latencies.append(now - self.sent_at)
        if not run.spec.interval:
            self.send()
            return
        self.next_at += run.spec.interval
        delay = max(0.0, self.next_at - now)
        asyncio.get_running_loop().call_later(delay, self.send)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.run.result.lost += 1
        self.stop()


def _content_length(head: bytes) -> int:
    where = head.find(b"content-length:")
    if where < 0:
        return 0
    stop = head.find(b"\r\n", where)
    return int(head[where + 15 : stop if stop >= 0 else len(head)])


async def _open(spec: LoadSpec, run: _Run, context: ssl.SSLContext) -> _Connection:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(
        lambda: _Connection(run), "127.0.0.1", spec.port, ssl=context, server_hostname="localhost"
    )
    return connection


async def _load(spec: LoadSpec, ready: Callable[[], Awaitable[None]]) -> LoadResult:
    run = _Run(spec)
    context = ssl.create_default_context(cafile=str(CA))
    connections = [await _open(spec, run, context) for _ in range(spec.connections)]
    run.active = len(connections)
    await ready()
    cpu = time.process_time()
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    if spec.interval:
        run.start_at, run.stop_at = now, now + spec.seconds
        for index, connection in enumerate(connections):
            connection.next_at = now + spec.interval * index / len(connections)
            loop.call_later(connection.next_at - now, connection.send)
    else:
        run.start_at = now
        if not spec.total:
            run.start_at, run.stop_at = now + WARMUP, now + WARMUP + spec.seconds
        for connection in connections:
            connection.send()
    await run.done
    run.result.window = (run.stop_at if not spec.total else time.monotonic()) - run.start_at
    run.result.cpu = time.process_time() - cpu
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return run.result


def load(specs: list[LoadSpec], on_ready: Callable[[], None] | None = None) -> LoadResult:
    """Run one client process per spec together; the results added up."""
    total = LoadResult()
    results = run_clients(_load, specs, on_ready)
    for result in results:
        total.ok += result.ok
        total.latencies += result.latencies
        total.window = max(total.window, result.window)
        total.lost += result.lost
        total.cpu += result.cpu
        for status, count in result.statuses.items():
            total.statuses[status] = total.statuses.get(status, 0) + count
    return total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
