"""The uid owning the client end of a loopback connection, asked of the kernel
for real (these are real sockets on loopback, not fakes)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from worker.api.peercred import PeerUids

NOBODY = 65534


@pytest.fixture
def peers() -> Iterator[PeerUids]:
    lookup = PeerUids()
    if not lookup.available:
        pytest.skip("this host allows no NETLINK_SOCK_DIAG")
    yield lookup
    lookup.close()


def connected(family: int = socket.AF_INET, host: str = "127.0.0.1") -> tuple[socket.socket, ...]:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname()[:2])
    server, _ = listener.accept()
    return listener, client, server


def test_own_connection_is_ours(peers: PeerUids) -> None:
    listener, client, server = connected()
    with listener, client, server:
        assert peers.uid(server.getpeername(), server.getsockname()) == os.getuid()


def test_ipv6_loopback(peers: PeerUids) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        listener, client, server = connected(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with listener, client, server:
        assert peers.uid(server.getpeername(), server.getsockname()) == os.getuid()


def test_ipv4_client_seen_through_a_dual_stack_listener(peers: PeerUids) -> None:
    listener, client, server = connected()
    with listener, client, server:
        host, port = server.getpeername()
        local_host, local_port = server.getsockname()
        mapped = (f"::ffff:{host}", port, 0, 0)
        assert peers.uid(mapped, (f"::ffff:{local_host}", local_port, 0, 0)) == os.getuid()


def test_another_users_socket_is_theirs(peers: PeerUids) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to make a socket as another user")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            sock = socket.create_connection(listener.getsockname())
            os.write(ready_w, b"x")
            os.read(done_r, 1)
            sock.close()
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"
        server, _ = listener.accept()
        with server:
            assert peers.uid(server.getpeername(), server.getsockname()) == NOBODY
    finally:
        os.write(done_w, b"x")
        os.waitpid(child, 0)
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)
        listener.close()


def test_no_such_socket_is_none(peers: PeerUids) -> None:
    listener, client, server = connected()
    with listener, client, server:
        host, port = server.getpeername()
        wrong_port = port + 1 if port < 65535 else port - 1
        assert peers.uid((host, wrong_port), server.getsockname()) is None
        # Asking again still works: the error reply was read and not left behind.
        assert peers.uid(server.getpeername(), server.getsockname()) == os.getuid()


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        (None, ("127.0.0.1", 1)),
        (("127.0.0.1", 1), None),
        ("/run/socket", "/run/socket"),
        (("not an address", 1), ("127.0.0.1", 1)),
        (("127.0.0.1", "port"), ("127.0.0.1", 1)),
        (("127.0.0.1", 1), ("::1", 1, 0, 0)),  # families differ
    ],
)
def test_what_is_not_a_tcp_address_pair_is_none(
    peers: PeerUids, peer: object, local: object
) -> None:
    assert peers.uid(peer, local) is None  # type: ignore[arg-type]
