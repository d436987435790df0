"""TLS for the client, on ``_ssl``, the C module under ssl.py.

Importing ssl.py costs a short command about 5 ms (it builds a dozen enum
classes from OpenSSL's constants), and a client needs none of it: the
context below is the one ``ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)`` makes
(the certificate checked against the given CA, the hostname or IP address
against the certificate, both by OpenSSL), with TLS 1.2 at least, and the
socket does what ``ssl.SSLSocket`` does for sendall, recv and close. A Python
whose ``_ssl`` lacks what is used here gets ssl.py itself, unchanged.
tests/client/test_tls.py holds both to the same behaviour.
"""

from __future__ import annotations

import _socket
import _ssl

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Stream(Protocol):
        def sendall(self, data: bytes) -> None: ...
        def recv(self, size: int) -> bytes: ...
        def settimeout(self, seconds: float | None) -> None: ...
        def close(self) -> None: ...


# The same classes ssl.py exports under these names.
SSLError = _ssl.SSLError
CertificateError = _ssl.SSLCertVerificationError
TLS_1_2 = 0x0303  # ssl.TLSVersion.TLSv1_2
RAW = hasattr(_ssl, "_SSLContext") and hasattr(_ssl._SSLContext, "_wrap_socket")


class ClientContext:
    """Trust ``ca_file`` and nothing else. Raises OSError or SSLError if it
    cannot be read."""

    def __init__(self, ca_file: str, *, raw: bool = RAW) -> None:
        self._raw = raw
        # (typeshed describes _ssl in part only: its private half is Any here.)
        self._context: Any
        if raw:
            self._context = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
            self._context.minimum_version = TLS_1_2
        else:
            import ssl

            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_verify_locations(ca_file)

    def connect(self, sock: _socket.socket, hostname: str) -> Stream:
        """The TLS stream over a connected ``sock``, handshake done."""
        if not self._raw:
            import socket  # ssl.py wraps only socket.py's sockets

            whole = socket.socket(sock.family, sock.type, sock.proto, sock.detach())
            wrapped: Stream = self._context.wrap_socket(whole, server_hostname=hostname)
            return wrapped
        if not hostname.isascii():
            hostname = hostname.encode("idna").decode("ascii")  # as ssl.py does
        stream = _TlsSocket(sock, self._context._wrap_socket(sock, False, hostname))
        stream.handshake()
        return stream


class _TlsSocket:
    def __init__(self, sock: _socket.socket, tls: Any) -> None:
        self._sock = sock  # _ssl keeps only a weak reference to it
        self._tls = tls

    def handshake(self) -> None:
        if self._sock.gettimeout() == 0.0:
            raise ValueError("a TLS handshake needs a blocking socket")
        self._tls.do_handshake()

    def sendall(self, data: bytes) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                sent += self._tls.write(view[sent:])

    def recv(self, size: int) -> bytes:
        try:
            data: bytes = self._tls.read(size)
        except SSLError as exc:
            # A peer that closes without close_notify: the end, as ssl.py
            # reads it (suppress_ragged_eofs).
            if exc.args and exc.args[0] == _ssl.SSL_ERROR_EOF:
                return b""
            raise
        return data

    def settimeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def close(self) -> None:
        self._sock.close()
