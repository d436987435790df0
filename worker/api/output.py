"""Serving a job's output: as JSON text, or as the raw bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from worker.api.executor_client import ExecutorClient
from worker.protocol import MAX_OUTPUT_CHUNK, OutputChunk, ReadOutput


class OutputReader:
    """Reads one job's output through the executor, a chunk at a time."""

    def __init__(self, executor: ExecutorClient, user: str, job_id: int) -> None:
        self._executor = executor
        self._user = user
        self._job_id = job_id

    async def chunk(self, offset: int) -> OutputChunk:
        return await self._executor.call(
            lambda rid: ReadOutput(rid, self._user, self._job_id, offset, MAX_OUTPUT_CHUNK),
            OutputChunk,
        )

    async def json_response(self) -> HTTPResponse:
        # The output as it stands now: up to the size the first reply saw.
        first = await self.chunk(0)
        pieces = [first.data]
        offset = first.offset + len(first.data)
        while offset < first.size:
            chunk = await self.chunk(offset)
            if not chunk.data:
                break
            pieces.append(chunk.data)
            offset = chunk.offset + len(chunk.data)
        loop = asyncio.get_running_loop()
        # Decoding and encoding many megabytes would stall every other
        # request if done on the event loop.
        body = await loop.run_in_executor(None, _output_json, self._job_id, pieces, first.offset)
        return HTTPResponse(body, content_type="application/json")

    async def send_raw(self, request: Request[Any, Any]) -> None:
        first = await self.chunk(0)
        response = await request.respond(
            content_type="application/octet-stream",
            headers={
                "X-Job-Status": first.status.value,
                "X-Output-Truncated-Bytes": str(first.offset),
            },
        )
        chunk = first
        while chunk.data:
            await response.send(chunk.data)
            offset = chunk.offset + len(chunk.data)
            if offset >= first.size:
                break
            chunk = await self.chunk(offset)
        await response.eof()


def _output_json(job_id: int, pieces: list[bytes], truncated: int) -> bytes:
    output = b"".join(pieces).decode("utf-8", "replace")
    body = {"id": job_id, "output": output, "truncated_bytes": truncated}
    return json.dumps(body).encode("utf-8")
