"""The client's TLS on ``_ssl`` against ssl.py's own (``raw=False``): the
same checks pass and fail, on real TLS sockets on loopback, with throwaway
CAs made by trustme."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from worker.client import tls
from worker.client.tls import ClientContext

Serve = Callable[[ssl.SSLSocket], None]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[True, False], ids=["_ssl", "ssl.py"])
def raw(request: pytest.FixtureRequest) -> bool:
    if request.param and not tls.RAW:
        pytest.skip("this Python's _ssl lacks what the client uses: ssl.py serves")
    return bool(request.param)


def server(ca: trustme.CA, names: list[str], serve: Serve) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    failures: list[BaseException] = []

    def run() -> None:
        raw_conn, _ = listener.accept()
        try:
            with context.wrap_socket(raw_conn, server_side=True) as conn:
                serve(conn)
        except (ssl.SSLError, OSError) as exc:  # a refused handshake, as meant
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)


def open_stream(ca: trustme.CA, port: int, host: str, raw: bool) -> tls.Stream:
    with ca.cert_pem.tempfile() as ca_file:
        context = ClientContext(ca_file, raw=raw)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.connect(sock, host)
    except BaseException:
        sock.close()
        raise


def echo_then_close(conn: ssl.SSLSocket) -> None:
    conn.sendall(conn.recv(100).upper())


def vanish(conn: ssl.SSLSocket) -> None:
    conn.recv(100)
    conn.sendall(b"last words")
    # Closed under TLS's feet: no close_notify, as a killed server would.
    socket.socket(fileno=conn.detach()).close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_trusted_certificate_for_the_name_carries_bytes_both_ways(
    ca: trustme.CA, raw: bool, host: str
) -> None:
    for port in server(ca, ["localhost", "127.0.0.1"], echo_then_close):
        stream = open_stream(ca, port, host, raw)
        stream.sendall(b"hello")
        assert stream.recv(100) == b"HELLO"
        assert stream.recv(100) == b""  # closed with close_notify
        stream.close()


def test_a_close_without_close_notify_reads_as_the_end(ca: trustme.CA, raw: bool) -> None:
    for port in server(ca, ["localhost"], vanish):
        stream = open_stream(ca, port, "localhost", raw)
        stream.sendall(b"bye")
        received = b""
        while piece := stream.recv(100):
            received += piece
        assert received == b"last words"
        stream.close()


@pytest.mark.parametrize(
    ("names", "host"),
    [
        (["other.test"], "localhost"),  # not the name asked for
        (["localhost"], "127.0.0.1"),  # an IP address must be in the certificate itself
    ],
)
def test_a_certificate_for_another_name_is_refused(
    ca: trustme.CA, raw: bool, names: list[str], host: str
) -> None:
    for port in server(ca, names, echo_then_close):
        with pytest.raises(tls.CertificateError) as refused:
            open_stream(ca, port, host, raw)
        assert "mismatch" in refused.value.verify_message.lower()


def test_a_certificate_of_another_ca_is_refused(ca: trustme.CA, raw: bool) -> None:
    stranger = trustme.CA()
    for port in server(stranger, ["localhost"], echo_then_close):
        with pytest.raises(tls.CertificateError) as refused:
            open_stream(ca, port, "localhost", raw)
        assert "certificate" in refused.value.verify_message


def test_a_silent_server_times_out(ca: trustme.CA, raw: bool) -> None:
    answered = threading.Event()

    def silent(conn: ssl.SSLSocket) -> None:
        answered.wait(10)

    for port in server(ca, ["localhost"], silent):
        stream = open_stream(ca, port, "localhost", raw)
        stream.settimeout(0.2)
        with pytest.raises(TimeoutError):
            stream.recv(100)
        answered.set()
        stream.close()


def test_an_unreadable_ca_file_is_an_error(tmp_path: Path, raw: bool) -> None:
    with pytest.raises((OSError, tls.SSLError)):
        ClientContext(str(tmp_path / "missing.pem"), raw=raw)
