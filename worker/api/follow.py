"""Following a job's output live, for any number of readers: the whole of
it, from the request (``send_live``) to the bytes on each socket.

One ``Feed`` per followed job pulls the output from the executor with a long
poll (``WatchOutput``) into a local copy, however many readers follow it;
readers read that copy by offset, each at its own pace, and wait on one
shared future for news. A stalled reader only stalls its own coroutine: it
holds no data of its own, and the job, the executor and the other readers go
on. The copy is capped like the executor's (the oldest bytes go first).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sanic import Request
from sanic.exceptions import RequestCancelled

from worker import chunked
from worker.api import streaming
from worker.api.executor_client import ExecutorClient
from worker.buffer import OutputBuffer
from worker.errors import WorkerError
from worker.protocol import MAX_OUTPUT_CHUNK, WATCH_TIMEOUT, OutputChunk, WatchOutput

log = logging.getLogger("worker.api")


if TYPE_CHECKING:
    from worker.api.output import OutputReader

# Bytes queued for one reader before writes to it go through its own
# coroutine, which waits for the socket to drain.
BACKLOG = 1 << 16
# A reader that takes nothing for this long while a send waits is gone.
STALLED_READER = 300.0
FOLLOW_TIMEOUT = 365 * 24 * 3600.0
# The job's status in a follow's trailer: X-Job.
TRAILERS = ("X-Job",)

Trailers = Callable[[], Awaitable[dict[str, str]]]


def write_frame(transport: Any, data: bytes) -> bool:
    """Write ``data`` as one HTTP/1.1 chunk straight to the socket, if the
    reader keeps up (little queued, not closing); else write nothing."""
    if transport.is_closing() or transport.get_write_buffer_size() >= BACKLOG:
        return False
    transport.write(chunked.frame(data))
    return True


class LiveReader:
    """A reader that has caught up: the feed writes new output to its socket
    directly, in HTTP/1.1 chunks, while it keeps up, and wakes it otherwise."""

    __slots__ = ("offset", "transport", "woken")

    def __init__(self, offset: int, transport: Any) -> None:
        self.offset = offset
        self.transport = transport
        self.woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(None)


class Feed:
    def __init__(self, executor: ExecutorClient, owner: str, job_id: int, cap: int) -> None:
        self._executor = executor
        self._owner = owner
        self._job_id = job_id
        self.copy = OutputBuffer(cap)
        self.done = False
        self.readers = 0
        self._news: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._live: set[LiveReader] = set()
        self._task = asyncio.create_task(self._pull())

    async def _pull(self) -> None:
        offset = 0
        try:
            while True:
                chunk = await self._executor.call(
                    functools.partial(self._watch, offset=offset),
                    OutputChunk,
                    timeout=WATCH_TIMEOUT + self._executor.timeout,
                )
                if chunk.offset > self.copy.size:  # the executor's cap dropped bytes
                    self.copy.skip_to(chunk.offset)
                if chunk.data:
                    self.copy.append(chunk.data)
                offset = chunk.offset + len(chunk.data)
                # Ended, and everything it wrote up to its end is here.
                if chunk.status.is_final and offset >= chunk.size:
                    break
                self._announce()
        except WorkerError:
            pass  # the executor is gone (or the job): the readers' streams end
        finally:
            self.done = True
            self._announce()

    def _watch(self, request_id: int, offset: int) -> WatchOutput:
        return WatchOutput(request_id, self._owner, self._job_id, offset, MAX_OUTPUT_CHUNK)

    def _announce(self) -> None:
        self._push()
        news, self._news = self._news, asyncio.get_running_loop().create_future()
        news.set_result(None)

    def attach(self, reader: LiveReader) -> None:
        self._live.add(reader)

    def detach(self, reader: LiveReader) -> None:
        self._live.discard(reader)

    def _push(self) -> None:
        """One pass over the live readers: no coroutine is woken per line."""
        for reader in list(self._live):
            where, data = self.copy.read(reader.offset, MAX_OUTPUT_CHUNK)
            ended = self.done or reader.transport.is_closing()
            fits = data and not ended and len(data) < MAX_OUTPUT_CHUNK
            if fits and write_frame(reader.transport, data):
                reader.offset = where + len(data)
                continue
            if data or ended:
                # Ended, much to send, or behind: its coroutine takes over.
                self._live.discard(reader)
                reader.wake()

    async def news(self) -> None:
        await asyncio.shield(self._news)

    def close(self) -> None:
        self._task.cancel()


class Feeds:
    """The feeds of all followed jobs, shared by their readers."""

    def __init__(self, executor: ExecutorClient, cap: int) -> None:
        self._executor = executor
        self._cap = cap
        self._feeds: dict[tuple[str, int], Feed] = {}

    @contextlib.asynccontextmanager
    async def follow(self, owner: str, job_id: int) -> AsyncIterator[Feed]:
        key = (owner, job_id)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = Feed(self._executor, owner, job_id, self._cap)
        feed.readers += 1
        try:
            yield feed
        finally:
            feed.readers -= 1
            if feed.readers == 0 and self._feeds.get(key) is feed:
                del self._feeds[key]
                feed.close()


async def send_live(
    reader: OutputReader,
    request: Request[Any, Any],
    feeds: Feeds,
    offset: int,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    trailers: Trailers | None = None,
) -> None:
    """The output from ``offset``, live, until the job has ended and every
    byte was sent; then ``trailers()``, for a client that takes them.
    One request however long it lasts."""
    await reader.chunk(0)  # an unknown job is a 404 before anything is streamed
    sent = dict(headers or {})
    if trailers is not None and streaming.wants_trailers(request):
        sent["Trailer"] = ", ".join(TRAILERS)
    else:
        trailers = None
    with streaming.response_timeout(request, FOLLOW_TIMEOUT):
        async with feeds.follow(reader.owner, reader.job_id) as feed:
            response = await request.respond(
                status=status, headers=sent, content_type="application/octet-stream"
            )
            await response.send(b"")  # the headers, now: the job may be quiet a while
            with contextlib.suppress(TimeoutError, ConnectionError, RequestCancelled):
                await _stream(feed, offset, response, request)
                await streaming.end(request, response, await _fields(trailers))


async def _fields(trailers: Trailers | None) -> dict[str, str]:
    if trailers is None:
        return {}
    try:
        return await trailers()
    except WorkerError:
        return {}  # the executor (or the job) is gone: the stream just ends


async def _stream(feed: Feed, offset: int, response: Any, request: Request[Any, Any]) -> None:
    """Send the feed's bytes from ``offset`` until the job has ended."""
    sock = streaming.transport(request)
    # Fanning one line out to a thousand readers is the hot path: where Sanic
    # frames the body in HTTP/1.1 chunks, frames go straight to the socket
    # while the reader keeps up, and the feed writes them while we wait.
    direct = streaming.is_chunked(request)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as stall:
        while True:
            where, data = feed.copy.read(offset, MAX_OUTPUT_CHUNK)
            if not data:
                if feed.done:
                    return
                if direct:
                    offset = await _live(feed, offset, sock)
                else:
                    await feed.news()
                continue
            offset = where + len(data)
            if direct and write_frame(sock, data):
                continue
            # A reader that takes nothing for this long is gone; the timer is
            # armed only while a send may block.
            behind = sock.get_write_buffer_size() >= BACKLOG
            stall.reschedule(loop.time() + STALLED_READER if behind else None)
            await response.send(data)
            stall.reschedule(None)


async def _live(feed: Feed, offset: int, sock: Any) -> int:
    """Let the feed write to this reader directly until it needs us again;
    return how far it got."""
    reader = LiveReader(offset, sock)
    feed.attach(reader)
    try:
        await reader.woken
    finally:
        feed.detach(reader)
    return reader.offset
