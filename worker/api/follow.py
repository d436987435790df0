"""Following a job's output live, for any number of readers.

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
from collections.abc import AsyncIterator
from typing import Any

from worker.api.executor_client import ExecutorClient
from worker.buffer import OutputBuffer
from worker.errors import WorkerError
from worker.protocol import MAX_OUTPUT_CHUNK, WATCH_TIMEOUT, OutputChunk, WatchOutput

log = logging.getLogger("worker.api")


# Bytes queued for one reader before writes to it go through its own
# coroutine, which waits for the socket to drain.
BACKLOG = 1 << 16


def write_frame(transport: Any, data: bytes) -> bool:
    """Write ``data`` as one HTTP/1.1 chunk straight to the socket, if the
    reader keeps up (little queued, not closing); else write nothing."""
    if transport.is_closing() or transport.get_write_buffer_size() >= BACKLOG:
        return False
    transport.write(b"%x\r\n%b\r\n" % (len(data), data))
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
