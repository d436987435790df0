"""Serving a job's output: as JSON text, or as the raw bytes."""

from __future__ import annotations

import json
from typing import Any

from sanic import Request

from worker.api.executor_client import ExecutorClient
from worker.api.jsonpage import send_page
from worker.protocol import MAX_OUTPUT_CHUNK, OutputChunk, ReadOutput

# The job's status in a reply's header: X-Job, at most this long.
MAX_JOB_HEADER = 8192

Headers = dict[str, str] | None


class OutputReader:
    """Reads one job's output through the executor, a chunk at a time."""

    def __init__(self, executor: ExecutorClient, user: str, job_id: int) -> None:
        self._executor = executor
        self.owner = user
        self.job_id = job_id

    async def chunk(self, offset: int, limit: int = MAX_OUTPUT_CHUNK) -> OutputChunk:
        return await self._executor.call(
            lambda rid: ReadOutput(rid, self.owner, self.job_id, offset, limit),
            OutputChunk,
        )

    async def json_page(
        self, request: Request[Any, Any], offset: int, limit: int, headers: Headers = None
    ) -> None:
        """One page of the output as JSON text (see jsonpage.py)."""
        await send_page(request, self, self.job_id, offset, limit, headers=headers)

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


def job_header(body: dict[str, Any]) -> str:
    """A job's status as one header value: compact JSON, ASCII only, with
    its arguments cut short if they are long (it is for showing)."""
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_JOB_HEADER:
        args = body.get("args") or []
        cut = {**body, "args": [str(a)[:64] for a in args[:16]], "args_truncated": True}
        text = json.dumps(cut, separators=(",", ":"))
    return text
