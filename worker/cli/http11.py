"""Just enough HTTP/1.1 for the CLI: one keep-alive TLS connection,
interim (1xx) replies and trailers included.

``http.client`` pulls in the email package to parse headers, which costs a
short command more than the whole request; the API's replies are simple
(Content-Length or chunked), so this small reader is all the CLI needs.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

MAX_HEAD = 64 << 10

# Told each interim (1xx) reply's status and headers, e.g. a kill's progress.
Interim = Callable[[int, "Headers"], None]


class HttpError(OSError):
    """The server's reply is not HTTP/1.1 as expected."""


class Headers(dict[str, str]):
    """Header names are kept in lower case and matched without regard to it."""

    def value(self, name: str, default: str = "") -> str:
        return super().get(name.lower(), default)


class Reply:
    """A reply whose head is read; the body is read with ``read``/``read1``."""

    def __init__(self, conn: HttpConnection, status: int, headers: Headers) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self._chunked = headers.value("transfer-encoding").lower() == "chunked"
        length = headers.value("content-length")
        self._left = int(length) if length.isdigit() else (None if self._chunked else 0)
        self._done = self._left == 0 and not self._chunked
        self.trailers = Headers()  # fields after a chunked body, once it is read

    def read1(self) -> bytes:
        """The next piece of the body; ``b""`` at its end."""
        if self._done:
            return b""
        if not self._chunked:
            assert self._left is not None
            data = self._conn.recv_some(self._left)
            self._left -= len(data)
            self._done = self._left == 0
            return data
        size_line = self._conn.read_line()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            _read_fields(self._conn, self.trailers)
            self._done = True
            return b""
        data = self._conn.read_exactly(size)
        self._conn.read_exactly(2)
        return data

    def read(self) -> bytes:
        pieces = []
        while piece := self.read1():
            pieces.append(piece)
        return b"".join(pieces)


class HttpConnection:
    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        self._host, self._port = host, port
        self._context, self._timeout = context, timeout
        self._sock: ssl.SSLSocket | None = None
        self._buffer = bytearray()
        self._closing = False  # the last reply said "Connection: close"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        on_interim: Interim | None = None,
        patient: bool = False,
    ) -> Reply:
        """Send a request and read its reply's head. ``patient``: its reply
        may take as long as it takes (a wait, a follow, a kill's grace
        period: the server answers those within its own deadlines)."""
        if self._closing:
            self.close()
        if self._sock is None:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
            try:
                self._sock = self._context.wrap_socket(raw, server_hostname=self._host)
            except BaseException:
                raw.close()
                raise
            self._buffer.clear()
        self._sock.settimeout(self._timeout)
        host = f"[{self._host}]" if ":" in self._host else self._host
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        if patient:
            self._sock.settimeout(None)
        while True:
            status, headers = self._read_head()
            if not 100 <= status < 200:
                break
            if on_interim is not None:
                on_interim(status, headers)
        self._closing = headers.value("connection").lower() == "close"
        return Reply(self, status, headers)

    def _read_head(self) -> tuple[int, Headers]:
        status_line = self.read_line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP reply: {status_line[:80]!r}")
        return int(parts[1]), _read_fields(self, Headers())

    def _fill(self) -> None:
        assert self._sock is not None
        data = self._sock.recv(1 << 16)
        if not data:
            raise HttpError("the server closed the connection")
        self._buffer += data

    def read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise HttpError("a header line is too long")
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def recv_some(self, most: int) -> bytes:
        if not self._buffer:
            self._fill()
        data = bytes(self._buffer[:most])
        del self._buffer[:most]
        return data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._closing = False


def _read_fields(conn: HttpConnection, into: Headers) -> Headers:
    """Header (or trailer) lines up to the empty one."""
    while line := conn.read_line():
        name, _, value = line.partition(b":")
        into[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return into
