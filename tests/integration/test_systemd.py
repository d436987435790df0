"""`worker serve` under systemd's Type=notify, with a datagram socket of
the test's own standing in for systemd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import CA, free_port, server_state, stop_server

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "worker.service"


@pytest.fixture
def manager() -> Iterator[tuple[socket.socket, str]]:
    # A short path: a socket's address is at most 107 bytes.
    where = tempfile.mkdtemp(prefix="wn-")
    path = os.path.join(where, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(where)


def _health(port: int) -> bytes:
    context = ssl.create_default_context(cafile=str(CA))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := tls.recv(4096):
            reply += chunk
    return reply


def test_ready_once_requests_are_accepted_and_stopping_on_term(
    manager: tuple[socket.socket, str],
) -> None:
    sock, path = manager
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "serve", "--port", str(port), *server_state()],
        env={**os.environ, "NOTIFY_SOCKET": path},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ready = sock.recv(4096).decode()
        assert ready.splitlines()[0] == "READY=1"
        assert f"STATUS=listening on https://127.0.0.1:{port}" in ready
        # At once, no retry: READY=1 comes only when the API accepts.
        assert _health(port).startswith(b"HTTP/1.1 200")
        process.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode().splitlines()[0] == "STOPPING=1"
        assert process.wait(30) == 0
    finally:
        stop_server(process)


def test_a_server_that_cannot_start_never_says_ready(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "worker", "serve", "--port", str(port), *server_state()],
            env={**os.environ, "NOTIFY_SOCKET": path},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


def test_the_unit_file_is_a_notify_service_with_hardening(tmp_path: Path) -> None:
    text = CONTRIB.read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["Type"] == "notify"
    assert " serve" in settings["ExecStart"]
    for key in ("NoNewPrivileges", "ProtectSystem", "StateDirectory", "Delegate"):
        assert key in settings, key
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("no systemd-analyze here to verify the unit with")
    # The unit as installed here: ExecStart names this environment's `worker`.
    installed = Path(sys.executable).parent / "worker"
    unit = tmp_path / "worker.service"
    unit.write_text(text.replace("/usr/local/bin/worker", str(installed)))
    command = [verify, "verify", str(unit)]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, b"")
