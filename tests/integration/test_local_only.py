"""Only loopback peers are served: a real remote peer, over a veth pair between two
network namespaces, gets 403 whatever forwarded headers or SANIC_ proxy settings say.

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
REFUSED = {"error": "only local requests are accepted"}
PROXY_ENV = {
    "SANIC_PROXIES_COUNT": "1",
    "SANIC_REAL_IP_HEADER": "x-forwarded-for",
    "SANIC_FORWARDED_SECRET": "x",
}
SPOOFS: list[dict[str, str]] = [
    {},
    {"X-Forwarded-For": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"Forwarded": "for=127.0.0.1;secret=x", "X-Forwarded-For": "127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
]

# Run inside a namespace: one HTTPS request trusting only the demo CA, checking the
# name "localhost" (a SAN of the demo certificate) whatever address is dialled.
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
             "--host", host, "--port", str(port), "--rate-limit-ms", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )  # fmt: skip
    seen = wait_listening(process, stderr_path)
    assert re.search(rb"api pid \d+", seen), seen
    return NsServer(process, host, port, stderr_path)


def request_from(namespace: str, server: NsServer, headers: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT,
         server.host, str(server.port), str(CA), json.dumps(headers)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reply: dict[str, Any] = json.loads(result.stdout)
    return reply


@pytest.fixture(scope="module", params=["plain", "sanic-proxy-env"])
def remote_server(
    request: pytest.FixtureRequest, netns: Namespaces, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NsServer]:
    env = PROXY_ENV if request.param == "sanic-proxy-env" else {}
    server = serve_in(netns.server, SERVER_IP, tmp_path_factory.mktemp("netns"), env)
    yield server
    stop_server(server.process)


@pytest.mark.parametrize("headers", SPOOFS, ids=lambda h: "+".join(h) or "no-headers")
def test_a_remote_peer_gets_403(
    netns: Namespaces, remote_server: NsServer, headers: dict[str, str]
) -> None:
    reply = request_from(netns.client, remote_server, dict(headers))
    assert reply["local"] == CLIENT_IP  # it really came over the veth pair
    assert reply["status"] == 403, reply
    assert json.loads(reply["body"]) == REFUSED


@pytest.mark.parametrize("headers", SPOOFS[:2], ids=["no-headers", "X-Forwarded-For"])
def test_the_servers_own_non_loopback_address_is_not_local(
    netns: Namespaces, remote_server: NsServer, headers: dict[str, str]
) -> None:
    reply = request_from(netns.server, remote_server, dict(headers))
    assert reply["local"] == SERVER_IP
    assert (reply["status"], json.loads(reply["body"])) == (403, REFUSED)


def test_control_loopback_inside_the_namespace_is_served(netns: Namespaces, tmp_path: Path) -> None:
    """The same client script over loopback gets past the check (404: no job 1 yet)."""
    server = serve_in(netns.server, "127.0.0.1", tmp_path, PROXY_ENV)
    try:
        reply = request_from(netns.server, server, {"X-Forwarded-For": CLIENT_IP})
    finally:
        stop_server(server.process)
    assert reply["local"] == "127.0.0.1"
    assert reply["status"] == 404, reply
    assert json.loads(reply["body"]) == {"error": "job 1 not found"}
