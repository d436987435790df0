"""The gate's own logic, with fakes for the request, the connection and the
authenticator: who a source is, the connection memo and its hook, the tarpit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from types import SimpleNamespace
from typing import Any

import pytest

from worker.api.gate import UNIDENTIFIED, Gate
from worker.api.ratelimit import RateLimiter
from worker.api.tarpit import Tarpit
from worker.errors import Forbidden, RateLimited, Unauthorized

HEADER = "Basic YWxpY2U6d29uZGVybGFuZA=="


class Peers:
    def __init__(self, uid: int | None, available: bool = True) -> None:
        self._uid = uid
        self.available = available
        self.asked = 0

    def uid(self, peer: Any, local: Any) -> int | None:
        self.asked += 1
        return self._uid


class Auth:
    """Answers from a script; records the sources it was told."""

    def __init__(self, *outcomes: str | Exception) -> None:
        self.outcomes = list(outcomes)
        self.sources: list[Hashable] = []

    async def authenticate(self, header: str | None, source: Callable[[], Hashable]) -> str:
        self.sources.append(source())
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def connection(ip: str = "127.0.0.1", port: int = 40000) -> SimpleNamespace:
    return SimpleNamespace(
        client_ip=ip, peername=(ip, port), sockname=("127.0.0.1", 8443), ctx=SimpleNamespace()
    )


def request(conn: SimpleNamespace, header: str | None = HEADER) -> SimpleNamespace:
    headers = {} if header is None else {"authorization": header}
    return SimpleNamespace(conn_info=conn, headers=headers, ctx=SimpleNamespace())


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def gate(auth: Auth, peers: Peers, tarpit: Tarpit | None = None) -> Gate:
    return Gate(auth, RateLimiter(0), peers, tarpit)  # type: ignore[arg-type]


def test_the_source_is_the_peers_uid_looked_up_once_per_connection() -> None:
    peers = Peers(uid=1000)
    the_gate = gate(Auth(), peers)
    conn = connection()
    assert the_gate.source_of(conn) == ("uid", 1000)
    assert the_gate.source_of(conn) == ("uid", 1000)
    assert peers.asked == 1


def test_a_peer_the_kernel_cannot_find_joins_the_one_unidentified_source() -> None:
    the_gate = gate(Auth(), Peers(uid=None, available=True))
    assert the_gate.source_of(connection(port=1)) == UNIDENTIFIED
    assert the_gate.source_of(connection(port=2)) == UNIDENTIFIED


def test_without_sock_diag_each_connection_is_its_own_source() -> None:
    the_gate = gate(Auth(), Peers(uid=None, available=False))
    first, second = connection(port=1), connection(port=2)
    assert the_gate.source_of(first) != the_gate.source_of(second)
    assert the_gate.source_of(first) == the_gate.source_of(first)


def test_an_authenticated_connection_is_recorded_once_and_its_hook_told() -> None:
    auth = Auth("alice")
    the_gate = gate(auth, Peers(uid=1000))
    told: list[tuple[Any, str]] = []
    the_gate.on_authenticated = lambda conn, user: told.append((conn, user))
    conn = connection()
    for _ in range(3):
        req = request(conn)
        asyncio.run(the_gate.admit(req))  # type: ignore[arg-type]
        assert req.ctx.user == "alice"
    assert auth.sources == [("uid", 1000)]  # asked once: the memo served the rest
    assert told == [(conn, "alice")]
    assert conn.ctx.auth[1] == "alice"


def test_another_header_on_the_same_connection_is_checked_again() -> None:
    auth = Auth("alice", Unauthorized("invalid username or password"))
    the_gate = gate(auth, Peers(uid=1000))
    conn = connection()
    asyncio.run(the_gate.admit(request(conn)))  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        asyncio.run(the_gate.admit(request(conn, "Basic YWxpY2U6eA==")))  # type: ignore[arg-type]
    assert len(auth.sources) == 2


def test_a_remote_peer_is_refused_before_anything_else() -> None:
    auth = Auth()
    with pytest.raises(Forbidden):
        asyncio.run(gate(auth, Peers(uid=0)).admit(request(connection("10.1.2.3"))))  # type: ignore[arg-type]
    assert auth.sources == []


def test_refusals_to_a_flooding_source_are_held_and_the_wait_told_shrinks() -> None:
    sleeps = Sleeps()
    clock = SimpleNamespace(now=0.0)
    tarpit = Tarpit(rate=2, clock=lambda: clock.now, sleep=sleeps)
    refusals = [RateLimited("too many failed logins", 5000) for _ in range(3)]
    the_gate = gate(Auth(*refusals), Peers(uid=65534), tarpit)
    told: list[int] = []
    for _ in range(3):
        with pytest.raises(RateLimited) as refused:
            asyncio.run(the_gate.admit(request(connection())))  # type: ignore[arg-type]
        told.append(refused.value.retry_after_ms)
    assert sleeps.slept == [0.5, 1.0]  # the first went out at once, then one per 0.5 s
    assert told == [5000, 4500, 4000]


def test_401s_are_held_too_but_not_a_users_own_rate_limit() -> None:
    sleeps = Sleeps()
    tarpit = Tarpit(rate=1, clock=lambda: 0.0, sleep=sleeps)
    auth = Auth(Unauthorized("x"), Unauthorized("x"), "alice", "alice")
    the_gate = Gate(auth, RateLimiter(60_000), Peers(uid=1000), tarpit)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(Unauthorized):
            asyncio.run(the_gate.admit(request(connection())))  # type: ignore[arg-type]
    assert sleeps.slept == [1.0]
    asyncio.run(the_gate.admit(request(connection())))  # type: ignore[arg-type]
    with pytest.raises(RateLimited):  # alice's own limit: answered at once
        asyncio.run(the_gate.admit(request(connection())))  # type: ignore[arg-type]
    assert sleeps.slept == [1.0]
