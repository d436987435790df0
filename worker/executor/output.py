"""A job's output: an append-only byte buffer addressed by byte offset.

Readers never hold a copy of their own; each asks for ``read(offset, limit)``
and gets the bytes from that offset on, so any number of readers can follow
one job at their own pace.
"""

from __future__ import annotations

import bisect

# Small writes are gathered into one chunk of about this size, so a job that
# writes a byte at a time does not cost a Python object per byte.
CHUNK = 64 << 10


class OutputBuffer:
    __slots__ = ("_chunks", "_sealed_size", "_starts", "_tail")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []  # sealed, immutable
        self._starts: list[int] = []  # offset of each sealed chunk
        self._sealed_size = 0
        self._tail = bytearray()  # still growing; sealed once it reaches CHUNK

    @property
    def size(self) -> int:
        return self._sealed_size + len(self._tail)

    def append(self, data: bytes) -> None:
        if not self._tail and len(data) >= CHUNK:
            self._seal(data)
            return
        self._tail += data
        if len(self._tail) >= CHUNK:
            self._seal(bytes(self._tail))
            self._tail.clear()

    def _seal(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._starts.append(self._sealed_size)
        self._sealed_size += len(chunk)

    def read(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes starting at ``offset``; empty at or past the end."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        pieces: list[bytes] = []
        wanted = min(limit, self.size - offset)
        if offset < self._sealed_size:
            index = bisect.bisect_right(self._starts, offset) - 1
            skip = offset - self._starts[index]
            while wanted > 0 and index < len(self._chunks):
                chunk = self._chunks[index]
                whole = skip == 0 and wanted >= len(chunk)
                piece = chunk if whole else chunk[skip : skip + wanted]
                pieces.append(piece)
                wanted -= len(piece)
                offset += len(piece)
                skip = 0
                index += 1
        if wanted > 0:
            start = offset - self._sealed_size
            pieces.append(bytes(self._tail[start : start + wanted]))
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)
