"""One page of a job's output as JSON text, streamed a piece at a time.

The page is read from the executor and written to the client in pieces of
``PIECE`` bytes, each waiting until the client has taken the one before, so
a request holds one piece whatever the page size, and a client that reads
nothing holds no more than that until the response timeout drops it. Text is
decoded incrementally: a character split between pieces is whole in the
page, and one split by the page's end (or the output's live edge) is left
for the next page rather than replaced. Invalid bytes become U+FFFD, written
as three bytes of UTF-8 (``ensure_ascii=False``), never a six-byte escape.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, Protocol

from sanic import Request

from worker.protocol import OutputChunk

PIECE = 64 << 10


class ChunkSource(Protocol):
    async def chunk(self, offset: int, limit: int) -> OutputChunk: ...


async def send_page(
    request: Request[Any, Any],
    source: ChunkSource,
    job_id: int,
    offset: int,
    limit: int,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """``{"id", "offset", "output", "next_offset", "size", "truncated_bytes",
    "complete"}``: up to ``limit`` bytes of output from ``offset`` (or from
    the oldest byte kept, if the output cap dropped those)."""
    chunk = await source.chunk(offset, min(limit, PIECE))  # a 404 before anything is sent
    start = position = chunk.offset
    response = await request.respond(content_type="application/json", headers=headers)
    await response.send(f'{{"id": {job_id}, "offset": {start}, "output": "'.encode())
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    left = limit
    while chunk.data and chunk.offset == position:  # a jump: the cap dropped bytes meanwhile
        await _send_text(response, decoder.decode(chunk.data))
        position += len(chunk.data)
        left -= len(chunk.data)
        if left <= 0 or position >= chunk.size:
            break
        chunk = await source.chunk(position, min(left, PIECE))
    complete = chunk.eof and chunk.status.is_final and position >= chunk.size
    held = len(decoder.getstate()[0])
    if held and (complete or position - held == start):
        # The output ends here for good, or the page would make no progress:
        # the incomplete character is replaced after all.
        await _send_text(response, decoder.decode(b"", final=True))
        held = 0
    tail = {
        "next_offset": position - held,
        "size": chunk.size,
        "truncated_bytes": chunk.dropped,
        # The server dropped all it kept of this job's output (its memory budget).
        "evicted": chunk.evicted,
        "complete": complete,
    }
    await response.send(b'", ' + json.dumps(tail)[1:].encode())
    await response.eof()


async def _send_text(response: Any, text: str) -> None:
    if text:
        await response.send(json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8"))
