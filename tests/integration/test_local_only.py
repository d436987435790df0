"""Only loopback peers are served: a real remote peer, over a veth pair between two
network namespaces, is closed as soon as it connects, before any TLS byte, whatever
it sends (a TLS hello, a plain request with forwarded headers claiming loopback,
junk, nothing) and whatever SANIC_ proxy settings say.

Needs root and iproute2; skips with the reason otherwise. All traffic stays on the
TEST-NET-1 addresses (192.0.2.0/24) inside the namespaces made here, or loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CA, free_port, stop_server, wait_listening

SERVER_IP, CLIENT_IP = "192.0.2.1", "192.0.2.2"
PROXY_ENV = {
    "SANIC_PROXIES_COUNT": "1",
    "SANIC_REAL_IP_HEADER": "x-forwarded-for",
    "SANIC_FORWARDED_SECRET": "x",
}
# Far longer than closing at accept takes: a close within it is not a timeout.
HANDSHAKE_TIMEOUT = 30
PAYLOADS = ["tls-hello", "plain-request-claiming-loopback", "junk", "nothing"]

# Run inside a namespace: connect, send one payload, then read everything the server
# sends until it closes. The TLS hello is a real one (from an SSLObject trusting only
# the demo CA), sent by hand so that every byte coming back is seen.
PROBE = """
import json, os, socket, ssl, sys, time
host, port, ca, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = socket.create_connection((host, port), timeout=10)
local = raw.getsockname()[0]
started = time.monotonic()
if payload == "tls-hello":
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.create_default_context(cafile=ca)
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
elif payload == "plain-request-claiming-loopback":
    data = (b"GET /jobs HTTP/1.1\\r\\nHost: localhost\\r\\nX-Forwarded-For: 127.0.0.1\\r\\n"
            b"Forwarded: for=127.0.0.1;secret=x\\r\\nX-Real-IP: 127.0.0.1\\r\\n\\r\\n")
elif payload == "junk":
    data = os.urandom(512)
else:
    data = b""
sent = 0
received = b""
try:
    if data:
        raw.sendall(data)
        sent = len(data)
    while chunk := raw.recv(65536):
        received += chunk
    outcome = "closed"
except ConnectionResetError:
    outcome = "reset"
except BrokenPipeError:
    outcome = "reset"
except TimeoutError:
    outcome = "still open"
print(json.dumps({"local": local, "sent": sent, "received": len(received),
                  "outcome": outcome, "seconds": time.monotonic() - started}))
"""

# The same, but a whole HTTPS request over loopback: the control.
CLIENT = """
import base64, http.client, json, socket, ssl, sys
host, port, ca, headers = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
raw = socket.create_connection((host, port), timeout=10)
tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")
conn = http.client.HTTPConnection("localhost", port, timeout=10)
conn.sock = tls
headers["Authorization"] = "Basic " + base64.b64encode(b"alice:wonderland").decode()
conn.request("GET", "/jobs/1/status", headers=headers)
reply = conn.getresponse()
body = reply.read().decode()
print(json.dumps({"local": tls.getsockname()[0], "status": reply.status, "body": body}))
"""


@dataclass
class Namespaces:
    server: str
    client: str


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def ip_ok(*args: str) -> None:
    result = ip(*args)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr.strip()}"


@pytest.fixture(scope="module")
def netns() -> Iterator[Namespaces]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root: not running as root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 `ip` is not installed")
    pid = os.getpid()
    spaces = Namespaces(server=f"wks{pid}", client=f"wkc{pid}")
    created: list[str] = []
    try:
        for name in (spaces.server, spaces.client):
            result = ip("netns", "add", name)
            if result.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {result.stderr.strip()}")
            created.append(name)
        # The veth ends are born inside the namespaces: nothing touches the host's links.
        ip_ok(
            "link", "add", f"vs{pid}", "netns", spaces.server, "type", "veth",
            "peer", "name", f"vc{pid}", "netns", spaces.client,
        )  # fmt: skip
        for name, dev, address in (
            (spaces.server, f"vs{pid}", SERVER_IP),
            (spaces.client, f"vc{pid}", CLIENT_IP),
        ):
            ip_ok("-n", name, "addr", "add", f"{address}/24", "dev", dev)
            ip_ok("-n", name, "link", "set", dev, "up")
            ip_ok("-n", name, "link", "set", "lo", "up")
        yield spaces
    finally:
        for name in reversed(created):
            ip("netns", "del", name)  # takes the veth pair with it


@dataclass
class NsServer:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    stderr_path: Path


def serve_in(namespace: str, host: str, tmp_path: Path, env: dict[str, str]) -> NsServer:
    """`worker serve` inside ``namespace``; `ip netns exec` execs, so the pid is the server."""
    port = free_port()
    stderr_path = tmp_path / f"serve-{namespace}-{port}.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "worker", "serve",
             "--host", host, "--port", str(port), "--rate-limit-ms", "0",
             "--handshake-timeout", str(HANDSHAKE_TIMEOUT)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )  # fmt: skip
    seen = wait_listening(process, stderr_path)
    assert re.search(rb"api pid \d+", seen), seen
    return NsServer(process, host, port, stderr_path)


def run_in(namespace: str, script: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", script, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reply: dict[str, Any] = json.loads(result.stdout)
    return reply


def probe_from(namespace: str, server: NsServer, payload: str) -> dict[str, Any]:
    return run_in(namespace, PROBE, server.host, str(server.port), str(CA), payload)


def request_from(namespace: str, server: NsServer, headers: dict[str, str]) -> dict[str, Any]:
    return run_in(namespace, CLIENT, server.host, str(server.port), str(CA), json.dumps(headers))


def assert_closed_at_accept(reply: dict[str, Any]) -> None:
    assert reply["received"] == 0, reply  # not one byte: no TLS, no HTTP answer
    assert reply["outcome"] in ("closed", "reset"), reply
    assert reply["seconds"] < HANDSHAKE_TIMEOUT / 3, reply  # closed, not timed out


@pytest.fixture(scope="module", params=["plain", "sanic-proxy-env"])
def remote_server(
    request: pytest.FixtureRequest, netns: Namespaces, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NsServer]:
    env = PROXY_ENV if request.param == "sanic-proxy-env" else {}
    server = serve_in(netns.server, SERVER_IP, tmp_path_factory.mktemp("netns"), env)
    yield server
    stop_server(server.process)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_remote_peer_is_closed_before_any_tls(
    netns: Namespaces, remote_server: NsServer, payload: str
) -> None:
    reply = probe_from(netns.client, remote_server, payload)
    assert reply["local"] == CLIENT_IP  # it really came over the veth pair
    assert_closed_at_accept(reply)


@pytest.mark.parametrize("payload", PAYLOADS[:2])
def test_the_servers_own_non_loopback_address_is_not_local(
    netns: Namespaces, remote_server: NsServer, payload: str
) -> None:
    reply = probe_from(netns.server, remote_server, payload)
    assert reply["local"] == SERVER_IP
    assert_closed_at_accept(reply)


def test_the_server_stays_up_for_local_clients_after_remote_ones(
    netns: Namespaces, remote_server: NsServer
) -> None:
    for payload in PAYLOADS:
        assert_closed_at_accept(probe_from(netns.client, remote_server, payload))
    assert remote_server.process.poll() is None
    errors = remote_server.stderr_path.read_text(errors="replace")
    assert "Traceback" not in errors, errors


def test_control_loopback_inside_the_namespace_is_served(netns: Namespaces, tmp_path: Path) -> None:
    """Over loopback the probe gets a TLS answer, and a whole request gets past the
    check (404: no job 1 yet)."""
    server = serve_in(netns.server, "127.0.0.1", tmp_path, PROXY_ENV)
    try:
        hello = probe_from(netns.server, server, "tls-hello")
        reply = request_from(netns.server, server, {"X-Forwarded-For": CLIENT_IP})
    finally:
        stop_server(server.process)
    assert hello["received"] > 0, hello  # the server's hello: the probe can tell
    assert reply["local"] == "127.0.0.1"
    assert reply["status"] == 404, reply
    assert json.loads(reply["body"]) == {"error": "job 1 not found"}
