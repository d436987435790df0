"""Serving a job's output: as JSON text, or as the raw bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sanic import Request
from sanic.exceptions import RequestCancelled

from worker.api import interim
from worker.api.executor_client import ExecutorClient
from worker.api.follow import BACKLOG, Feed, Feeds, LiveReader, write_frame
from worker.api.jsonpage import send_page
from worker.errors import WorkerError
from worker.protocol import MAX_OUTPUT_CHUNK, OutputChunk, ReadOutput

STALLED_READER = 300.0
FOLLOW_TIMEOUT = 365 * 24 * 3600.0
# The job's status in a reply's header (and in a follow's trailer): X-Job.
TRAILERS = ("X-Job",)
MAX_JOB_HEADER = 8192

Headers = dict[str, str] | None


class OutputReader:
    """Reads one job's output through the executor, a chunk at a time."""

    def __init__(self, executor: ExecutorClient, user: str, job_id: int) -> None:
        self._executor = executor
        self._user = user
        self._job_id = job_id

    async def chunk(self, offset: int, limit: int = MAX_OUTPUT_CHUNK) -> OutputChunk:
        return await self._executor.call(
            lambda rid: ReadOutput(rid, self._user, self._job_id, offset, limit),
            OutputChunk,
        )

    async def json_page(
        self, request: Request[Any, Any], offset: int, limit: int, headers: Headers = None
    ) -> None:
        """One page of the output as JSON text (see jsonpage.py)."""
        await send_page(request, self, self._job_id, offset, limit, headers=headers)

    async def tail_offset(self, lines: int) -> int:
        """Where the last ``lines`` lines of the output (as it stands) start;
        a newline that ends the output ends its last line, as for tail(1)."""
        probe = await self.chunk(0, 0)
        end = position = probe.size
        found = 0
        while lines and position > probe.dropped:
            begin = max(probe.dropped, position - MAX_OUTPUT_CHUNK)
            chunk = await self.chunk(begin, position - begin)
            data = chunk.data[: max(0, position - chunk.offset)]
            if not data:
                break
            if position == end and data.endswith(b"\n"):
                data = data[:-1]
            index = len(data)
            while (index := data.rfind(b"\n", 0, index)) >= 0:
                found += 1
                if found == lines:
                    return chunk.offset + index + 1
            position = chunk.offset
        return position

    async def send_raw(
        self, request: Request[Any, Any], offset: int = 0, headers: Headers = None
    ) -> None:
        """The output as it stands now, from ``offset``, as raw bytes."""
        first = await self.chunk(offset)
        response = await request.respond(
            content_type="application/octet-stream",
            headers={
                **(headers or {}),
                "X-Job-Status": first.status.value,
                "X-Output-Truncated-Bytes": str(first.dropped),
                "X-Output-Evicted": "true" if first.evicted else "false",
            },
        )
        chunk = first
        while chunk.data:
            await response.send(chunk.data)
            position = chunk.offset + len(chunk.data)
            if position >= first.size:
                break
            chunk = await self.chunk(position)
        await response.eof()

    async def send_live(
        self,
        request: Request[Any, Any],
        feeds: Feeds,
        offset: int,
        *,
        status: int = 200,
        headers: Headers = None,
        trailers: Callable[[], Awaitable[dict[str, str]]] | None = None,
    ) -> None:
        """The output from ``offset``, live, until the job has ended and every
        byte was sent; then ``trailers()``, for a client that takes them.
        One request however long it lasts."""
        await self.chunk(0)  # an unknown job is a 404 before anything is streamed
        sent = dict(headers or {})
        if trailers is not None and interim.wants_trailers(request):
            sent["Trailer"] = ", ".join(TRAILERS)
        else:
            trailers = None
        with no_response_timeout(request):
            async with feeds.follow(self._user, self._job_id) as feed:
                response = await request.respond(
                    status=status, headers=sent, content_type="application/octet-stream"
                )
                await response.send(b"")  # the headers, now: the job may be quiet a while
                with contextlib.suppress(TimeoutError, ConnectionError, RequestCancelled):
                    await _stream(feed, offset, response, request)
                    await interim.end(request, response, await _fields(trailers))


async def _fields(trailers: Callable[[], Awaitable[dict[str, str]]] | None) -> dict[str, str]:
    if trailers is None:
        return {}
    try:
        return await trailers()
    except WorkerError:
        return {}  # the executor (or the job) is gone: the stream just ends


def job_header(body: dict[str, Any]) -> str:
    """A job's status as one header value: compact JSON, ASCII only, with
    its arguments cut short if they are long (it is for showing)."""
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_JOB_HEADER:
        args = body.get("args") or []
        cut = {**body, "args": [str(a)[:64] for a in args[:16]], "args_truncated": True}
        text = json.dumps(cut, separators=(",", ":"))
    return text


async def _stream(feed: Feed, offset: int, response: Any, request: Request[Any, Any]) -> None:
    """Send the feed's bytes from ``offset`` until the job has ended."""
    transport: Any = request.transport  # an asyncio.Transport, loosely typed by Sanic
    # Fanning one line out to a thousand readers is the hot path: where Sanic
    # frames the body in HTTP/1.1 chunks, frames go straight to the socket
    # while the reader keeps up, and the feed writes them while we wait.
    direct = interim.chunked(request)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as stall:
        while True:
            where, data = feed.copy.read(offset, MAX_OUTPUT_CHUNK)
            if not data:
                if feed.done:
                    return
                if direct:
                    offset = await _live(feed, offset, transport)
                else:
                    await feed.news()
                continue
            offset = where + len(data)
            if direct and write_frame(transport, data):
                continue
            # A reader that takes nothing for this long is gone; the timer is
            # armed only while a send may block.
            behind = transport.get_write_buffer_size() >= BACKLOG
            stall.reschedule(loop.time() + STALLED_READER if behind else None)
            await response.send(data)
            stall.reschedule(None)


async def _live(feed: Feed, offset: int, transport: Any) -> int:
    """Let the feed write to this reader directly until it needs us again;
    return how far it got."""
    reader = LiveReader(offset, transport)
    feed.attach(reader)
    try:
        await reader.woken
    finally:
        feed.detach(reader)
    return reader.offset


@contextlib.contextmanager
def no_response_timeout(request: Request[Any, Any]) -> Iterator[None]:
    """Sanic ends a response that sends nothing for RESPONSE_TIMEOUT; a follow
    of a quiet job may legitimately do that for hours."""
    protocol = getattr(request.stream, "protocol", None)
    saved = getattr(protocol, "response_timeout", None)
    if saved is None:
        yield
        return
    protocol.response_timeout = FOLLOW_TIMEOUT  # type: ignore[union-attr]
    try:
        yield
    finally:
        protocol.response_timeout = saved  # type: ignore[union-attr]
