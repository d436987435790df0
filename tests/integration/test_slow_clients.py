"""Slow and idle clients cannot take the API's front door (issue 10).

One real slowloris against a real server with the default connection caps:
thousands of loopback sockets (more than the caps) that never start TLS, send
a request head a byte a second, or trickle a body, while legitimate clients
keep making requests. The deadlines are shortened by flags so the attack is
over in seconds; the arithmetic behind them has unit tests of its own.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import CA, Server, start_server, stop_server
from worker.api.connections import RESERVED_DESCRIPTORS
from worker.config import DEFAULT_BODY_GRACE, DEFAULT_MAX_CONNECTIONS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HANDSHAKE_TIMEOUT = 2.0
HEADER_TIMEOUT = 3.0
# More sockets than the default caps hold, in total (4096) and for each of
# the two addresses they come from (2048); legitimate clients share the first.
ATTACK = {"tcp": 5000, "header": 300, "body": 300}
SOURCES = ["127.0.0.1", "127.0.0.2"]
# Deadline overshoot allowed: accept and close under load, a check's nap,
# the TLS close exchange.
SLACK = 5.0
KEEP_ALIVE_USERS = 20
RSS_MARGIN = 50 << 20


@dataclass
class Legitimate:
    """Requests of a real client, one connection each, until told to stop."""

    server: Server
    job: int
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                reply = self.server.request("GET", f"/jobs/{self.job}/status")
            except OSError as exc:
                self.failures.append(repr(exc))
            else:
                if reply.status != 200:
                    self.failures.append(f"{reply.status} {reply.body!r}")
            self.latencies.append((started, time.monotonic() - started))
            self.stop.wait(0.02)


@dataclass
class Watch:
    """The API process's open descriptors, sampled."""

    api: psutil.Process
    most_fds: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.most_fds = max(self.most_fds, self.api.num_fds())
            except psutil.Error:
                return
            self.stop.wait(0.05)


def keep_alive_user(server: Server) -> http.client.HTTPSConnection:
    """A connection that has made one authenticated request and stays open."""
    context = ssl.create_default_context(cafile=str(CA))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=30)
    assert status_on(conn) == 200
    return conn


def status_on(conn: http.client.HTTPSConnection) -> int:
    conn.request("GET", "/jobs", headers={"Authorization": "Basic YWxpY2U6d29uZGVybGFuZA=="})
    response = conn.getresponse()
    response.read()
    return response.status


def read_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"the attacker said nothing for {timeout} s")
    line = process.stdout.readline()
    assert line, "the attacker ended without a word"
    reply: dict[str, Any] = json.loads(line)
    return reply


@pytest.fixture
def attacked(tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        tmp_path,
        "--rate-limit-ms", "0",
        "--handshake-timeout", str(HANDSHAKE_TIMEOUT),
        "--header-timeout", str(HEADER_TIMEOUT),
    )  # fmt: skip
    yield server
    stop_server(server.process)


def start_attacker(server: Server, tmp_path: Path, hold: float) -> subprocess.Popen[bytes]:
    spec = {
        "port": server.port,
        "ca": str(CA),
        "interval": 1.0,
        "hold": hold,
        "kinds": ATTACK,
        "sources": SOURCES,
        "result": str(tmp_path / "attack.json"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slowloris", json.dumps(spec)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,  # a group of our own to clean up
    )


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def test_a_slowloris_of_thousands_of_sockets_leaves_legitimate_clients_served(
    attacked: Server, tmp_path: Path
) -> None:
    server = attacked
    api = psutil.Process(server.api_pid)
    job = server.run_job("true")
    users = [keep_alive_user(server) for _ in range(KEEP_ALIVE_USERS)]
    rss_before = api.memory_info().rss
    legitimate = Legitimate(server, job)
    watch = Watch(api)
    threads = [threading.Thread(target=legitimate.run), threading.Thread(target=watch.run)]
    hold = 40.0
    attacker = start_attacker(server, tmp_path, hold)
    try:
        began = time.monotonic()
        for thread in threads:
            thread.start()
        ready = read_line(attacker, timeout=60)["ready"]
        # Every socket is open or was already shed: the caps have been hit hard.
        for kind, count in ATTACK.items():
            assert ready[kind] == {"opened": count, "failed": 0}, ready
        # Users who logged in kept their connections through it.
        assert [status_on(conn) for conn in users] == [200] * KEEP_ALIVE_USERS
        done = read_line(attacker, timeout=hold + 30)["done"]
        ended = time.monotonic()
        assert attacker.wait(30) == 0
    finally:
        legitimate.stop.set()
        watch.stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(60)
        for conn in users:
            conn.close()
        if attacker.poll() is None:
            os.killpg(attacker.pid, signal.SIGKILL)
            attacker.wait()
        if attacker.stdout is not None:
            attacker.stdout.close()

    result = json.loads(Path(done).read_text())
    # The server closed every socket, each within its deadline.
    limits = {
        "tcp": HANDSHAKE_TIMEOUT,
        "header": HEADER_TIMEOUT,
        "body": HEADER_TIMEOUT + DEFAULT_BODY_GRACE,
    }
    for kind, tally in result.items():
        assert tally["left_open"] == 0, (kind, tally["left_open"])
        assert len(tally["lifetimes"]) == ATTACK[kind]
        assert max(tally["lifetimes"]) < limits[kind] + SLACK, kind
    for kind in ("header", "body"):
        # Each got a 408, or nothing at all when shed to make room.
        assert set(result[kind]["answers"]) <= {"HTTP/1.1 408 Request Timeout", "(nothing)"}
    # The caps held: never more sockets than the table allows.
    assert watch.most_fds <= DEFAULT_MAX_CONNECTIONS + RESERVED_DESCRIPTORS, watch.most_fds

    # Legitimate requests all succeeded, and fast, throughout the attack.
    during = [seconds for start, seconds in legitimate.latencies if began <= start <= ended]
    assert legitimate.failures == []
    assert len(during) >= 20, len(during)
    assert p99(during) < 1.0, sorted(during)[-5:]

    # The memory the attack took is given back.
    deadline = time.monotonic() + 20
    while (rss := api.memory_info().rss) - rss_before > RSS_MARGIN:
        assert time.monotonic() < deadline, f"RSS {rss >> 20} MiB, from {rss_before >> 20} MiB"
        time.sleep(0.2)
    assert server.request("GET", f"/jobs/{job}/status").status == 200


AUTH_HEADER = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n"


def tls_socket(server: Server) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(CA))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until_closed(sock: ssl.SSLSocket) -> bytes:
    received = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_clients_that_keep_up_are_not_cut_and_later_heads_are_timed_from_their_first_byte(
    tmp_path: Path,
) -> None:
    server = start_server(
        tmp_path, "--rate-limit-ms", "0", "--header-timeout", "1", "--min-body-rate", "1000"
    )
    outcome: dict[str, Any] = {}

    def kept_alive() -> None:
        """Idle longer than the header deadline, then a head sent a byte at a time."""
        with tls_socket(server) as sock:
            sock.sendall(f"GET /jobs HTTP/1.1\r\nHost: x\r\n{AUTH_HEADER}\r\n".encode())
            outcome["first"] = sock.recv(65536).split(b"\r\n", 1)[0]
            # Idle past the 1 s header deadline (the keep-alive timeout applies,
            # not the header's): a server that wrongly closes now is seen at once.
            select.select([sock], [], [], 1.5)
            began = time.monotonic()
            sock.sendall(b"GET /jobs HTTP/1.1\r\n")
            for byte in b"Host: ":  # the head never ends; it goes on for a while
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
            outcome["second"] = read_until_closed(sock)
            outcome["second_after"] = time.monotonic() - began

    def steady_body() -> None:
        """A body at twice the least rate, for longer than the grace period."""
        size, piece, every = 14_000, 500, 0.25  # 2,000 bytes a second
        with tls_socket(server) as sock:
            sock.sendall(
                f"POST /jobs/999/stdin HTTP/1.1\r\nHost: x\r\n{AUTH_HEADER}"
                f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
            )
            began = time.monotonic()
            for sent in range(size // piece):
                # The pace is the attack, kept to a schedule (no drift).
                time.sleep(max(0.0, began + sent * every - time.monotonic()))
                sock.sendall(b"x" * piece)
            outcome["body"] = read_until_closed(sock)

    try:
        workers = [threading.Thread(target=kept_alive), threading.Thread(target=steady_body)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    finally:
        stop_server(server.process)
    assert outcome["first"] == b"HTTP/1.1 200 OK"
    assert outcome["second"].startswith(b"HTTP/1.1 408 "), outcome["second"]
    assert b"did not arrive within 1 seconds" in outcome["second"]
    assert 0.9 < outcome["second_after"] < 1.0 + SLACK
    # Read in full, and answered by the handler: no such job.
    assert outcome["body"].startswith(b"HTTP/1.1 404 "), outcome["body"]
