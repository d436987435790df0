"""A JSON page of output, built piece by piece against a scripted source."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from worker.api import jsonpage
from worker.protocol import JobStatus, OutputChunk


class Source:
    """Output ``data`` of which the first ``dropped`` bytes are gone;
    ``drop_after`` more are dropped after that many reads (a job writing at
    its cap)."""

    def __init__(self, data: bytes, final: bool = True, dropped: int = 0) -> None:
        self.data, self.final, self.dropped = data, final, dropped
        self.reads = 0
        self.drop_after: tuple[int, int] | None = None

    async def chunk(self, offset: int, limit: int) -> OutputChunk:
        self.reads += 1
        if self.drop_after and self.reads > self.drop_after[0]:
            self.dropped = max(self.dropped, self.drop_after[1])
        where = max(offset, self.dropped)
        status = JobStatus.COMPLETED if self.final else JobStatus.RUNNING
        return OutputChunk(
            self.reads,
            1,
            where,
            self.data[where : where + limit],
            len(self.data),
            status,
            eof=self.final,
            dropped=self.dropped,
        )


class Response:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.ended = False

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def eof(self) -> None:
        self.ended = True


class Request:
    def __init__(self) -> None:
        self.response = Response()

    async def respond(self, **_: Any) -> Response:
        return self.response


def page(source: Source, offset: int = 0, limit: int = 1 << 20) -> dict[str, Any]:
    request = Request()
    asyncio.run(jsonpage.send_page(request, source, 1, offset, limit))  # type: ignore[arg-type]
    assert request.response.ended
    body = b"".join(request.response.sent)
    # Each piece of output at most 3x its bytes (escapes), plus the fixed tail.
    assert max(len(piece) for piece in request.response.sent) <= 3 * jsonpage.PIECE + 128
    result: dict[str, Any] = json.loads(body)
    result["_bytes"] = len(body)
    return result


def test_characters_split_between_pieces_are_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonpage, "PIECE", 5)
    text = "aé€😀" * 10
    result = page(Source(text.encode()))
    assert result["output"] == text
    assert result["complete"] and result["next_offset"] == result["size"] == len(text.encode())


def test_a_character_split_by_the_pages_end_starts_the_next_page() -> None:
    data = "ab€cd".encode()  # € is bytes 2..4
    first = page(Source(data), limit=3)
    assert (first["output"], first["next_offset"], first["complete"]) == ("ab", 2, False)
    second = page(Source(data), offset=2, limit=10)
    assert second["output"] == "€cd" and second["complete"]


def test_the_live_edge_holds_back_a_half_written_character() -> None:
    source = Source("ok€".encode()[:4], final=False)  # the job has written half the €
    result = page(source)
    assert (result["output"], result["next_offset"], result["complete"]) == ("ok", 2, False)


def test_at_the_end_of_the_output_a_broken_character_is_replaced() -> None:
    result = page(Source("ok€".encode()[:4]))
    assert result["output"] == "ok\ufffd" and result["complete"]


def test_a_page_always_makes_progress() -> None:
    result = page(Source("€".encode(), final=False), limit=1)
    assert result["next_offset"] == 1 and result["output"] == "\ufffd"


def test_invalid_bytes_cost_three_bytes_each() -> None:
    result = page(Source(b"\xff" * 1000))
    assert result["output"] == "\ufffd" * 1000
    assert result["_bytes"] < 3 * 1000 + 200


def test_bytes_dropped_before_the_page_are_skipped_and_said() -> None:
    result = page(Source(b"0123456789", dropped=4), offset=1)
    assert (result["offset"], result["output"], result["truncated_bytes"]) == (4, "456789", 4)


def test_bytes_dropped_while_paging_end_the_page_without_a_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jsonpage, "PIECE", 4)
    source = Source(b"0123456789abcdef")
    source.drop_after = (2, 12)  # after two reads the oldest 12 bytes are gone
    result = page(source)
    assert result["output"] == "01234567"  # what came before the jump, and no more
    assert result["next_offset"] == 8 and not result["complete"]
