"""The client's small HTTP/1.1 reader against canned replies from a real
TLS socket on loopback (a throwaway CA made with trustme)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme

from worker.client.http11 import HttpConnection
from worker.client.tls import ClientContext


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def serve(ca: trustme.CA, replies: list[bytes], close_after: bool) -> Iterator[int]:
    """A server that answers each request on one connection with the next
    canned reply; closes after the last one if ``close_after``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as conn:
            buffered = b""
            for reply in replies:
                while b"\r\n\r\n" not in buffered:
                    buffered += conn.recv(4096)
                buffered = buffered.split(b"\r\n\r\n", 1)[1]
                conn.sendall(reply)
            if not close_after:
                conn.recv(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(5)


def connect(ca: trustme.CA, port: int) -> HttpConnection:
    with ca.cert_pem.tempfile() as ca_file:
        context = ClientContext(ca_file)
    return HttpConnection("localhost", port, context, timeout=10)


def test_a_reply_with_no_length_and_no_chunks_is_read_to_the_close(ca: trustme.CA) -> None:
    for port in serve(ca, [b"HTTP/1.1 200 OK\r\n\r\nall of it, until the end"], True):
        conn = connect(ca, port)
        reply = conn.request("GET", "/", None, {})
        assert reply.read() == b"all of it, until the end" and reply.done
        conn.close()


def test_chunks_with_trailers_then_the_next_reply_on_the_same_connection(ca: trustme.CA) -> None:
    chunked_reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Job\r\n\r\n"
        b'5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Job: {"status":"completed"}\r\n\r\n'
    )
    second = b"HTTP/1.1 204 No Content\r\n\r\n"
    third = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    for port in serve(ca, [chunked_reply, second, third], False):
        conn = connect(ca, port)
        reply = conn.request("GET", "/a", None, {})
        assert reply.read1() == b"hello"
        assert reply.read() == b" world"
        assert reply.trailers.value("x-job") == '{"status":"completed"}'
        assert conn.request("GET", "/b", None, {}).read() == b""
        assert conn.request("GET", "/c", None, {}).read() == b"abc"
        conn.close()
