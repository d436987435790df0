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

from worker.api.executor_client import ExecutorClient
from worker.buffer import OutputBuffer
from worker.errors import WorkerError
from worker.protocol import MAX_OUTPUT_CHUNK, OutputChunk, WatchOutput

log = logging.getLogger("worker.api")


class Feed:
    def __init__(self, executor: ExecutorClient, owner: str, job_id: int, cap: int) -> None:
        self._executor = executor
        self._owner = owner
        self._job_id = job_id
        self.copy = OutputBuffer(cap)
        self.done = False
        self.error: WorkerError | None = None
        self.readers = 0
        self._news: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._pull())

    async def _pull(self) -> None:
        offset = 0
        try:
            while True:
                chunk = await self._executor.call(
                    functools.partial(self._watch, offset=offset), OutputChunk
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
        except WorkerError as exc:
            self.error = exc
        finally:
            self.done = True
            self._announce()

    def _watch(self, request_id: int, offset: int) -> WatchOutput:
        return WatchOutput(request_id, self._owner, self._job_id, offset, MAX_OUTPUT_CHUNK)

    def _announce(self) -> None:
        news, self._news = self._news, asyncio.get_running_loop().create_future()
        news.set_result(None)

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
