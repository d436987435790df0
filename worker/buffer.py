"""A job's output: an append-only byte stream addressed by byte offset.

Readers never hold a copy of their own; each asks for ``read(offset, limit)``
and gets the bytes from that offset on, so any number of readers can follow
one job at their own pace.

Memory is capped: past ``limit`` kept bytes, the *oldest* are dropped, so
the most recent ``limit`` bytes (where errors usually are) are kept. Offsets
stay absolute: ``start`` is how many bytes were dropped, and a read from
before it begins at ``start`` instead.
"""

from __future__ import annotations

import bisect

# What a buffer with no sealed chunk holds in their place: never changed
# (``_seal`` makes lists of its own first).
_NONE: list[bytes] = []
_NONE_STARTS: list[int] = []

# Small writes are gathered into chunks of about this size, so a job that
# writes a byte at a time does not cost a Python object per byte.
CHUNK = 64 << 10


class OutputBuffer:
    __slots__ = (
        "_chunk",
        "_chunks",
        "_first",
        "_limit",
        "_sealed_end",
        "_starts",
        "_tail",
        "start",
    )

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._chunk = CHUNK
        # Made on first use: most jobs write little or nothing, and a
        # finished job is kept, with its buffer, by the thousand.
        self._chunks: list[bytes] = _NONE  # sealed, immutable; [_first:] are live
        self._starts: list[int] = _NONE_STARTS  # absolute offset of each sealed chunk
        self._first = 0
        self._sealed_end = 0
        self._tail: bytes | bytearray = b""  # still growing; sealed once it reaches _chunk
        self.start = 0  # bytes dropped from the front (absolute offset of the first kept)

    @property
    def size(self) -> int:
        """Bytes written so far, kept or not: the absolute end offset."""
        return self._sealed_end + len(self._tail)

    @property
    def kept(self) -> int:
        return self.size - self.start

    def append(self, data: bytes) -> None:
        if len(data) >= self._chunk // 4:  # kept as it came, not copied again
            if self._tail:
                self._seal(bytes(self._tail))
                self._tail = b""
            self._seal(data)
        elif not self._tail:
            self._tail = bytearray(data)
        else:
            self._tail += data
            if len(self._tail) >= self._chunk:
                self._seal(bytes(self._tail))
                self._tail = b""
        if self._limit is not None:
            self._enforce(self._limit)

    def set_limit(self, limit: int) -> None:
        """Keep at most ``limit`` bytes from now on (dropping the oldest now)."""
        self._limit = limit
        self._enforce(limit)

    def drop_all(self) -> None:
        """Forget every byte kept; the stream's offsets go on from its end."""
        end = self.size
        self._chunks, self._starts = _NONE, _NONE_STARTS
        self._first = 0
        self._tail = b""
        self._sealed_end = self.start = end

    def skip_to(self, offset: int) -> None:
        """Continue at ``offset``, beyond the end: the bytes in between were
        lost upstream (a copy that fell behind another buffer's cap). What is
        kept now is dropped too, so the kept bytes stay one contiguous run."""
        if offset <= self.size:
            return
        self._chunks, self._starts = _NONE, _NONE_STARTS
        self._first = 0
        self._tail = b""
        self._sealed_end = offset
        self.start = offset

    def _seal(self, chunk: bytes) -> None:
        if self._chunks is _NONE:
            self._chunks, self._starts = [], []
        self._chunks.append(chunk)
        self._starts.append(self._sealed_end)
        self._sealed_end += len(chunk)

    def _enforce(self, limit: int) -> None:
        while self.kept > limit:
            if self._first == len(self._chunks):
                # Only the growing tail is left and it alone is too long: seal
                # it so it can be cut like any chunk.
                self._seal(bytes(self._tail))
                self._tail = b""
            excess = self.kept - limit
            oldest = self._chunks[self._first]
            if len(oldest) > excess:  # keep its newer part: exactly `limit` remain
                self._chunks[self._first] = oldest[excess:]
                self._starts[self._first] += excess
                self.start += excess
                break
            self._chunks[self._first] = b""
            self._first += 1
            self.start += len(oldest)
        if self._first > 64 and self._first * 2 > len(self._chunks):
            del self._chunks[: self._first]
            del self._starts[: self._first]
            self._first = 0

    def read(self, offset: int, limit: int) -> tuple[int, bytes]:
        """``(where, data)``: up to ``limit`` bytes from ``offset``, or from
        ``start`` when those bytes were dropped; empty at or past the end."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        offset = max(offset, self.start)
        where = offset
        pieces: list[bytes] = []
        wanted = min(limit, self.size - offset)
        if wanted > 0 and offset < self._sealed_end:
            index = bisect.bisect_right(self._starts, offset, lo=self._first) - 1
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
            begin = offset - self._sealed_end
            pieces.append(bytes(self._tail[begin : begin + wanted]))
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return where, data
