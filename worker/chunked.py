"""HTTP/1.1 chunked transfer coding, both ways, without I/O: the API frames
a follow with it, and the client, the tests and bench/ read it back. One
codec, so the framing the server writes is the framing everyone reads.

``Decoder`` is fed whatever bytes arrived (any split) and hands back the
body's pieces; after the last chunk it holds the trailer fields.
"""

from __future__ import annotations

LAST_CHUNK = b"0\r\n"
MAX_LINE = 8192  # a size line or a trailer field longer than this is an error


class ChunkedError(ValueError):
    """The bytes are not valid chunked coding."""


def frame(data: bytes) -> bytes:
    """One chunk holding ``data`` (which must not be empty: that is the end)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def end(trailers: dict[str, str] | None = None) -> bytes:
    """The last chunk, then the trailer fields and the empty line."""
    fields = "".join(f"{name}: {value}\r\n" for name, value in (trailers or {}).items())
    return LAST_CHUNK + fields.encode("latin-1") + b"\r\n"


class Decoder:
    """Incremental: ``feed(data)`` returns the body bytes it completed."""

    __slots__ = ("_buffer", "_left", "done", "rest", "trailers")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = -1  # bytes left of the current chunk; -1: a size line is next
        self.trailers: dict[str, str] = {}  # lower-cased names
        self.done = False  # the last chunk and the trailers were read
        self.rest = b""  # bytes after the end (the next reply's, on a kept connection)

    def feed(self, data: bytes) -> list[bytes]:
        if self.done:
            self.rest += data
            return []
        self._buffer += data
        pieces: list[bytes] = []
        while not self.done:
            if self._left > 0:
                take = min(self._left, len(self._buffer))
                if take == 0:
                    break
                pieces.append(bytes(self._buffer[:take]))
                del self._buffer[:take]
                self._left -= take
                continue
            line = self._line()
            if line is None:
                break
            if self._left == 0:  # the CRLF that ends a chunk's data
                if line:
                    raise ChunkedError("a chunk's data is longer than its size")
                self._left = -1
            elif self._left == -1:
                self._left = self._size(line)
                if self._left == 0:
                    self._left = -2  # trailers follow
            elif line:  # self._left == -2: a trailer field
                name, sep, value = line.decode("latin-1").partition(":")
                if not sep:
                    raise ChunkedError(f"not a trailer field: {line[:40]!r}")
                self.trailers[name.strip().lower()] = value.strip()
            else:
                self.done = True
                self.rest = bytes(self._buffer)
                self._buffer.clear()
        return pieces

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise ChunkedError("a line of the chunked coding is too long")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    @staticmethod
    def _size(line: bytes) -> int:
        text = line.split(b";", 1)[0].strip()
        try:
            size = int(text, 16)
        except ValueError:
            raise ChunkedError(f"not a chunk size: {text[:20]!r}") from None
        if size < 0:
            raise ChunkedError("a negative chunk size")
        return size
