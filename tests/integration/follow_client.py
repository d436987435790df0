"""A minimal asyncio HTTPS follower: many of them fit in one test process."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass, field

from tests.integration.conftest import CA
from worker import chunked


@dataclass
class Received:
    status: int = 0
    data: bytearray = field(default_factory=bytearray)
    # (arrival time, total bytes so far) per chunk, for latency measurements
    arrivals: list[tuple[float, int]] = field(default_factory=list)


class Heads:
    """Counts followers whose reply headers arrived. The server sends them
    once the follower is subscribed to the job's output, so this is how a
    test knows every follower is in place, without sleeping."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def arrived(self) -> None:
        self.count += 1
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


def client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CA))


async def follow(
    port: int,
    path: str,
    context: ssl.SSLContext,
    user: str = "alice",
    password: str = "wonderland",
    heads: Heads | None = None,
) -> Received:
    """GET ``path`` and read the chunked body to its end; tell ``heads`` when
    the reply's headers are in."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n\r\n".encode()
    )
    received = Received()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        received.status = int(head.split(b" ", 2)[1])
        if heads is not None:
            heads.arrived()
        if b"transfer-encoding: chunked" not in head.lower():
            length = _content_length(head)
            received.data += await reader.readexactly(length)
            return received
        decoder = chunked.Decoder()
        while not decoder.done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the follow ended before its last chunk")
            pieces = decoder.feed(data)
            if pieces:
                received.data += b"".join(pieces)
                received.arrivals.append((time.time(), len(received.data)))
        return received
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
