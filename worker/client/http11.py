"""Just enough HTTP/1.1 for the client (and so the CLI): one keep-alive TLS connection,
interim (1xx) replies and trailers included.

``http.client`` pulls in the email package to parse headers, which costs a
short command more than the whole request; the API's replies are simple
(Content-Length or chunked), so this small reader is all the client needs.
"""

from __future__ import annotations

import _socket
from collections.abc import Callable

from worker import chunked

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from worker.client.tls import ClientContext, Stream

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
    """A reply whose head is read; the body is read with ``read``/``read1``.
    Its body is framed by Content-Length, by chunks (worker.chunked, the
    codec the server writes with), or else runs until the server closes."""

    def __init__(self, conn: HttpConnection, status: int, headers: Headers) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.trailers = Headers()  # fields after a chunked body, once it is read
        self._decoder: chunked.Decoder | None = None
        self._pending: list[bytes] = []
        self._left: int | None = None  # None (and not chunked): until the close
        length = headers.value("content-length")
        if status in (204, 304):
            self._left = 0
        elif headers.value("transfer-encoding").lower() == "chunked":
            self._decoder = chunked.Decoder()
        elif length.isdigit():
            self._left = int(length)
        else:
            conn.closing_after()  # the close is what ends this body
        self._done = self._left == 0

    @property
    def done(self) -> bool:
        """The whole body has been read."""
        return self._done

    def read1(self) -> bytes:
        """The next piece of the body; ``b""`` at its end."""
        if self._done:
            return b""
        if self._decoder is not None:
            return self._read_chunked(self._decoder)
        if self._left is None:
            data = self._conn.recv_until_close()
            self._done = not data
            return data
        data = self._conn.recv_some(self._left)
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, decoder: chunked.Decoder) -> bytes:
        while not self._pending:
            if decoder.done:
                self.trailers.update(decoder.trailers)
                self._conn.unread(decoder.rest)  # the next reply's, if any
                self._done = True
                return b""
            try:
                self._pending = decoder.feed(self._conn.take())
            except chunked.ChunkedError as exc:
                raise HttpError(f"a bad chunked body: {exc}") from None
        return self._pending.pop(0)

    def read(self) -> bytes:
        pieces = []
        while piece := self.read1():
            pieces.append(piece)
        return b"".join(pieces)


class TcpSocket(_socket.socket):
    """``_socket``'s socket, which ``_ssl`` can hold a weak reference to:
    socket.py's import (its enums, selectors) costs a command a few
    milliseconds it need not pay."""

    __slots__ = ("__weakref__",)


def _connect(address: tuple[str | bytes, int], timeout: float) -> TcpSocket:
    """``socket.create_connection``, on ``TcpSocket``."""
    host, port = address
    first: OSError | None = None
    for family, kind, proto, _, where in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = TcpSocket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(where)
        except OSError as exc:
            sock.close()
            first = first or exc
            continue
        return sock
    raise first or OSError(f"no address for {host!r}")


class HttpConnection:
    def __init__(self, host: str, port: int, context: ClientContext, timeout: float) -> None:
        self._host, self._port = host, port
        self._context, self._timeout = context, timeout
        self._sock: Stream | None = None
        self._buffer = bytearray()
        self._closing = False  # the last reply said "Connection: close"
        self._reply: Reply | None = None  # the last reply, its body perhaps unread

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
        if self._closing or (self._reply is not None and not self._reply.done):
            # The last body was left unread (a follow let go early): its
            # bytes would be taken for this reply's, so start afresh.
            self.close()
        if self._sock is None:
            name = _ascii_name(self._host)
            # (typeshed says str; getaddrinfo takes bytes as well)
            address = (name, self._port)
            raw = _connect(address, self._timeout)
            try:
                self._sock = self._context.connect(raw, self._host)
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
        self._reply = Reply(self, status, headers)  # may set _closing too
        return self._reply

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

    def take(self) -> bytes:
        """Whatever has arrived (waiting for some if nothing has)."""
        if not self._buffer:
            self._fill()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def unread(self, data: bytes) -> None:
        self._buffer[:0] = data

    def recv_until_close(self) -> bytes:
        """The next bytes of a body that ends with the connection; b"" at it."""
        if self._buffer:
            return self.take()
        assert self._sock is not None
        return self._sock.recv(1 << 16)

    def closing_after(self) -> None:
        """This connection cannot be used for another request."""
        self._closing = True

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
        self._reply = None


def _ascii_name(host: str) -> str | bytes:
    """The host as bytes where the idna codec would give the same bytes:
    socket and ssl encode a str host with it, and importing it (with
    stringprep and unicodedata) costs a short command more than a millisecond."""
    if not host.isascii():
        return host
    *labels, last = host.split(".")
    if len(last) > 63 or not all(0 < len(label) < 64 for label in labels):
        return host  # the codec's own error, as before
    return host.encode("ascii")


def _read_fields(conn: HttpConnection, into: Headers) -> Headers:
    """Header (or trailer) lines up to the empty one."""
    while line := conn.read_line():
        name, _, value = line.partition(b":")
        into[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return into
