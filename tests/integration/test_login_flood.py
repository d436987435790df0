"""A wrong-password flood from loopback locks out nobody but the attacker.

Real sockets on loopback against a real server. The flood comes from other
processes (this module, run with ``python -m``): keep-alive connections that
send wrong passwords back to back and more that open a new connection for
every attempt, against made-up names and the victims' own. Meanwhile a user
whose credentials are verified keeps working (p99 within 3x of the idle p99
measured just before), a user logging in for the first time gets in within a
second, and a CLI call succeeds. Each flood stops by itself after a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import encodings.idna  # noqa: F401  (loaded now: after dropping to nobody, /root is closed)
import json
import math
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.integration.conftest import Server, start_server, stop_server
from worker.resources import DEMO_CA, DEMO_USERS, demo_file

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
# carol logs in for the first time during the flood; dave is the CLI's user.
NEWCOMERS = {"carol": "tea-party", "dave": "mad-hatter"}
FLOOD_SECONDS = 5.0
ATTACKERS = 2  # processes, each with the connections below
KEEPALIVE = 200
CHURN = 40  # under Sanic's listen backlog of 100, see the report of issue 10
SAMPLES = 100
MAX_ATTEMPTS = 1_000_000


# --- the attacker (runs in its own process) ---------------------------------


def _attempt_header(number: int, names: list[str]) -> bytes:
    # With "spray", every fifth attempt is for a made-up name: no per-name
    # back-off can catch those.
    spray = not names
    pool = ["alice", "bob", *NEWCOMERS] if spray else names
    name = f"nobody{number}" if spray and number % 5 == 0 else pool[number % len(pool)]
    token = base64.b64encode(f"{name}:guess{number}".encode()).decode()
    return (
        f"GET /jobs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n\r\n"
    ).encode()


class Flood:
    def __init__(self, port: int, seconds: float, names: list[str]) -> None:
        self.port = port
        self.deadline = time.monotonic() + seconds
        self.names = names
        self.context = ssl.create_default_context(cafile=str(demo_file(DEMO_CA)))
        self.sent = 0
        self.statuses: collections.Counter[str] = collections.Counter()

    def going(self) -> bool:
        return time.monotonic() < self.deadline and self.sent < MAX_ATTEMPTS

    async def attempt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sent += 1
        writer.write(_attempt_header(self.sent, self.names))
        head = await reader.readuntil(b"\r\n\r\n")
        self.statuses[head.split(b" ", 2)[1].decode()] += 1
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)

    async def connection(self, attempts: int) -> None:
        """Connections one after another, each for up to ``attempts`` attempts."""
        while self.going():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, ssl=self.context, server_hostname="localhost"
                )
                try:
                    for _ in range(attempts):
                        if not self.going():
                            break
                        await self.attempt(reader, writer)
                finally:
                    writer.close()
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                self.statuses["error"] += 1

    async def run(self) -> None:
        tasks = [self.connection(MAX_ATTEMPTS) for _ in range(KEEPALIVE)]
        tasks += [self.connection(1) for _ in range(CHURN)]
        everything = asyncio.gather(*tasks)
        # Under way once every connection has made its first attempt.
        while self.sent < len(tasks) and self.going():
            await asyncio.sleep(0.01)
        print("flooding", flush=True)
        # At the deadline, attempts still waiting for their (held) answers are cut.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything, self.deadline - time.monotonic() + 1)


def _attack() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--names", default="", help="comma-separated; none: spray")
    args = parser.parse_args()
    names = [name for name in args.names.split(",") if name]
    flood = Flood(args.port, args.seconds, names)  # the CA is read before dropping
    if args.uid is not None:
        os.setgroups([])
        os.setresgid(args.uid, args.uid, args.uid)
        os.setresuid(args.uid, args.uid, args.uid)
    started = time.monotonic()
    asyncio.run(flood.run())
    took = time.monotonic() - started
    print(json.dumps({"sent": flood.sent, "seconds": took, "statuses": flood.statuses}))


# --- the test side ----------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own (nobody else's failures or cache), with the demo
    users and two more who have never logged in."""
    users = tmp_path / "users"
    lines = [demo_file(DEMO_USERS).read_text(encoding="utf-8")]
    for name, password in NEWCOMERS.items():
        # The demo users' cost, so that a check costs what it does in use.
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()
        lines.append(f"{name}:{hashed}\n")
    users.write_text("".join(lines), encoding="utf-8")
    users.chmod(0o600)  # a root server refuses a users file other users could read
    instance = start_server(
        tmp_path, "--users", str(users), "--rate-limit-ms", "0", "--kill-grace", "1"
    )
    instance.extra_env = {"WORKER_USER": "dave", "WORKER_PASSWORD": NEWCOMERS["dave"]}
    yield instance
    stop_server(instance.process)


def p99(samples: list[float]) -> float:
    return sorted(samples)[math.ceil(0.99 * len(samples)) - 1]


def cached_user_latencies(server: Server) -> list[float]:
    """bob's requests, each on a new connection as the CLI makes them."""
    times = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        reply = server.request("GET", "/jobs", user="bob")
        times.append(time.perf_counter() - started)
        assert reply.status == 200, reply.body
    return times


def first_login(server: Server, user: str) -> tuple[int, float]:
    token = base64.b64encode(f"{user}:{NEWCOMERS[user]}".encode()).decode()
    started = time.perf_counter()
    reply = server.request("GET", "/jobs", user=None, headers={"Authorization": f"Basic {token}"})
    return reply.status, time.perf_counter() - started


def start_flood(server: Server, uid: int | None, names: str = "") -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "tests.integration.test_login_flood"]
    command += [str(server.port), str(FLOOD_SECONDS), "--names", names]
    if uid is not None:
        command += ["--uid", str(uid)]
    attackers = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a group of its own, for the cleanup
        )
        for _ in range(ATTACKERS)
    ]
    try:
        for attacker in attackers:
            wait_for_line(attacker, b"flooding", deadline=time.monotonic() + 20)
    except BaseException:
        end_flood(attackers)
        raise
    return attackers


def wait_for_line(process: subprocess.Popen[bytes], wanted: bytes, deadline: float) -> None:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"the attacker never said {wanted!r}"
            if selector.select(left) and process.stdout.readline().strip() == wanted:
                return
            assert process.poll() is None, process.stderr.read() if process.stderr else ""


def end_flood(attackers: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """Each attacker's report, once it stopped by itself (else it is killed)."""
    reports = []
    for attacker in attackers:
        try:
            out, err = attacker.communicate(timeout=FLOOD_SECONDS + 20)
        except subprocess.TimeoutExpired:
            os.killpg(attacker.pid, signal.SIGKILL)  # the group it was started in
            attacker.communicate()
            continue
        assert attacker.returncode == 0, err
        reports.append(json.loads(out.splitlines()[-1]))
    return reports


def check_flood(reports: list[dict[str, Any]]) -> None:
    assert len(reports) == ATTACKERS
    statuses: collections.Counter[str] = collections.Counter()
    for report in reports:
        statuses.update(report["statuses"])
    sent = sum(report["sent"] for report in reports)
    print(f"flood: {sent} attempts sent, answers {dict(statuses)}")
    # Nothing but refusals; and they kept coming: the flood was real.
    assert set(statuses) <= {"401", "429", "error"}
    assert statuses["429"] > 0 and sent >= ATTACKERS * (KEEPALIVE + CHURN)


def compare(idle: list[float], *flooded: list[float]) -> None:
    """The cached user's p99 under the flood within 3x of the idle one, in
    the better of two windows: the host may be shared with other test runs,
    and a moment of their load must not fail this test, while a server that
    the flood slows down is slow in both."""

    def describe(samples: list[float]) -> str:
        slowest = ", ".join(f"{t * 1000:.1f}" for t in sorted(samples)[-3:])
        middle = sorted(samples)[len(samples) // 2] * 1000
        return f"p99 {p99(samples) * 1000:.1f} ms (p50 {middle:.1f}, slowest {slowest})"

    print(f"cached user, {SAMPLES} requests on new connections each: idle {describe(idle)}")
    for number, window in enumerate(flooded, start=1):
        print(f"  flooded, window {number}: {describe(window)}")
    assert min(p99(window) for window in flooded) <= 3 * p99(idle)


@pytest.mark.slow
def test_a_flood_from_another_uid_locks_out_nobody(server: Server) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to flood as another uid (nobody)")
    assert server.request("GET", "/jobs", user="bob").status == 200  # bob is now cached
    idle = cached_user_latencies(server)
    attackers = start_flood(server, NOBODY)  # spraying, victims' names included
    try:
        flooded = cached_user_latencies(server)
        carol = first_login(server, "carol")
        started = time.perf_counter()
        cli = server.cli("list")
        cli_took = time.perf_counter() - started
        flooded_again = cached_user_latencies(server)
        still_flooding = all(attacker.poll() is None for attacker in attackers)
    finally:
        reports = end_flood(attackers)
    print(f"first login under the flood: {carol[1] * 1000:.0f} ms; CLI call {cli_took:.2f} s")
    check_flood(reports)
    assert carol[0] == 200 and carol[1] < 1.0
    assert cli.returncode == 0, cli.stderr
    compare(idle, flooded, flooded_again)
    assert still_flooding, "the flood ended before the measurements did"


@pytest.mark.slow
def test_a_flood_from_the_same_uid_still_spares_verified_users_and_other_names(
    server: Server,
) -> None:
    """The limit, stated: an attacker with the victim's own uid is told
    apart by username only. Verified users are spared entirely, and a first
    login under another name waits for one rest of that uid (at most 2 s) and
    a check or two; the flooded names themselves are in back-off for this uid
    while the flood lasts (not tested here: that takes up to 30 s to clear)."""
    assert server.request("GET", "/jobs", user="bob").status == 200
    idle = cached_user_latencies(server)
    attackers = start_flood(server, None, names="alice,carol")
    try:
        flooded = cached_user_latencies(server)
        dave = first_login(server, "dave")
        flooded_again = cached_user_latencies(server)
        still_flooding = all(attacker.poll() is None for attacker in attackers)
    finally:
        reports = end_flood(attackers)
    print(f"first login of another name under the flood: {dave[1] * 1000:.0f} ms")
    check_flood(reports)
    assert dave[0] == 200 and dave[1] < 5.0
    compare(idle, flooded, flooded_again)
    assert still_flooding, "the flood ended before the measurements did"


if __name__ == "__main__":
    _attack()
