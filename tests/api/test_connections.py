"""The connection table: caps, and who is shed to make room (fake connections)."""

from __future__ import annotations

import pytest

from worker.api.connections import RESERVED_DESCRIPTORS, ConnectionTable, fit_caps
from worker.config import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER
from worker.errors import ConfigError


class Fake:
    def __init__(
        self, name: str, authenticated: bool = False, idle: bool = False, busy: bool = False
    ) -> None:
        self.name = name
        self.authenticated = authenticated
        self.idle = idle
        self.busy = busy
        self.was_shed = False
        self.asked = 0

    def is_authenticated(self) -> bool:
        self.asked += 1
        return self.authenticated

    def is_idle(self) -> bool:
        return self.idle

    def is_busy(self) -> bool:
        return self.busy

    def shed(self) -> None:
        assert not self.was_shed, f"{self.name} shed twice"
        self.was_shed = True

    def __repr__(self) -> str:
        return self.name


def fill(table: ConnectionTable, count: int, peer: str = "127.0.0.1", **kw: bool) -> list[Fake]:
    members = [Fake(f"{peer}#{i}", **kw) for i in range(count)]
    for member in members:
        assert table.admit(member, peer)
    return members


def test_under_the_caps_everyone_is_admitted_and_nobody_shed() -> None:
    table = ConnectionTable(max_total=10, max_per_peer=5)
    members = fill(table, 5, "127.0.0.1") + fill(table, 5, "127.0.0.2")
    assert len(table) == 10
    assert (table.count("127.0.0.1"), table.count("127.0.0.2")) == (5, 5)
    assert not any(m.was_shed for m in members)


def test_the_oldest_unauthenticated_connection_makes_room() -> None:
    table = ConnectionTable(max_total=3, max_per_peer=3)
    old_user = Fake("user", authenticated=True)
    assert table.admit(old_user, "127.0.0.1")
    anon1, anon2 = fill(table, 2)
    newcomer = Fake("new")
    assert table.admit(newcomer, "127.0.0.1")
    assert anon1.was_shed and anon1 not in table
    assert not old_user.was_shed and not anon2.was_shed
    assert len(table) == 3 and newcomer in table
    assert table.shed_count == 1


def test_with_everyone_authenticated_the_oldest_idle_goes() -> None:
    table = ConnectionTable(max_total=3, max_per_peer=3)
    busy = Fake("busy", authenticated=True)
    idle_a = Fake("idle-a", authenticated=True, idle=True)
    idle_b = Fake("idle-b", authenticated=True, idle=True)
    for member in (busy, idle_a, idle_b):
        assert table.admit(member, "127.0.0.1")
    assert table.admit(Fake("new"), "127.0.0.1")
    assert idle_a.was_shed and not busy.was_shed and not idle_b.was_shed


def test_with_everyone_authenticated_and_busy_the_newcomer_is_refused() -> None:
    table = ConnectionTable(max_total=2, max_per_peer=2)
    users = fill(table, 2, authenticated=True)
    assert not table.admit(Fake("new"), "127.0.0.1")
    assert not any(u.was_shed for u in users)
    assert len(table) == 2 and table.refused_count == 1


def test_the_per_peer_cap_sheds_only_that_peers_connections() -> None:
    table = ConnectionTable(max_total=100, max_per_peer=3)
    others = fill(table, 3, "127.0.0.9")  # older, unauthenticated, another peer
    mine = fill(table, 3, "127.0.0.1")
    assert table.admit(Fake("mine-new"), "127.0.0.1")
    assert mine[0].was_shed
    assert not any(o.was_shed for o in others)
    assert table.count("127.0.0.1") == 3 and table.count("127.0.0.9") == 3


def test_a_peer_full_of_busy_users_is_refused_though_others_could_be_shed() -> None:
    table = ConnectionTable(max_total=100, max_per_peer=2)
    fill(table, 2, "127.0.0.1", authenticated=True)
    others = fill(table, 2, "127.0.0.2")
    assert not table.admit(Fake("new"), "127.0.0.1")
    assert len(table) == 4 and not any(o.was_shed for o in others)


def test_the_global_cap_sheds_the_oldest_unauthenticated_of_any_peer() -> None:
    table = ConnectionTable(max_total=4, max_per_peer=4)
    first = fill(table, 2, "127.0.0.2")
    fill(table, 2, "127.0.0.3")
    assert table.admit(Fake("x"), "127.0.0.1")
    assert first[0].was_shed and table.count("127.0.0.2") == 1


def test_authentication_is_asked_once_per_connection_however_many_newcomers() -> None:
    table = ConnectionTable(max_total=101, max_per_peer=101)
    users = fill(table, 100, authenticated=True)
    fill(table, 1)
    for i in range(50):  # each newcomer sheds the previous one
        assert table.admit(Fake(f"n{i}"), "127.0.0.1")
    assert all(u.asked == 1 for u in users)
    assert not any(u.was_shed for u in users)


def test_leave_forgets_and_is_harmless_twice() -> None:
    table = ConnectionTable(max_total=2, max_per_peer=2)
    a, b = fill(table, 2)
    table.leave(a)
    table.leave(a)
    table.leave(Fake("stranger"))
    assert len(table) == 1 and a not in table and b in table
    assert table.admit(Fake("c"), "127.0.0.1") and not b.was_shed
    table.leave(b)
    assert table.count("127.0.0.1") == 1


def test_a_promoted_connection_leaves_cleanly() -> None:
    table = ConnectionTable(max_total=2, max_per_peer=2)
    user = Fake("user", authenticated=True)
    assert table.admit(user, "127.0.0.1")
    fill(table, 1)
    assert table.admit(Fake("n"), "127.0.0.1")  # promotes user on the way
    table.leave(user)
    assert user not in table and len(table) == 1


def test_iteration_is_a_snapshot() -> None:
    table = ConnectionTable(max_total=5, max_per_peer=5)
    members = fill(table, 3)
    for member in table:
        table.leave(member)
    assert len(table) == 0 and len(members) == 3


def test_per_peer_cap_never_exceeds_the_total() -> None:
    assert ConnectionTable(max_total=3, max_per_peer=10).max_per_peer == 3


def test_caps_below_one_are_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        ConnectionTable(max_total=0, max_per_peer=1)


def test_the_defaults_fit_the_open_files_limit_they_are_meant_for() -> None:
    defaults = (DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER)
    assert fit_caps(*defaults, open_files=20000) == defaults
    assert fit_caps(*defaults, open_files=1024) == (1024 - RESERVED_DESCRIPTORS,) * 2
    assert fit_caps(*defaults, open_files=3000) == (3000 - RESERVED_DESCRIPTORS, 2048)
    assert fit_caps(10, 5, open_files=10) == (1, 1)


def test_a_first_login_being_answered_is_shed_after_idle_users_and_pacers() -> None:
    table = ConnectionTable(max_total=4, max_per_peer=4)
    logging_in = Fake("first login, waiting for bcrypt", busy=True)
    assert table.admit(logging_in, "127.0.0.1")
    pacer = Fake("slowloris")
    idle_user = Fake("idle user", authenticated=True, idle=True)
    busy_user = Fake("busy user", authenticated=True)
    for member in (pacer, idle_user, busy_user):
        assert table.admit(member, "127.0.0.1")
    for expected in (pacer, idle_user, logging_in):
        assert table.admit(Fake("newcomer", busy=True), "127.0.0.1")
        assert expected.was_shed, expected
    assert not busy_user.was_shed


def test_one_user_holds_at_most_max_per_user_connections() -> None:
    table = ConnectionTable(max_total=10, max_per_peer=10, max_per_user=3)
    alice = fill(table, 4)
    assert all(table.assign(m, "alice") for m in alice[:3])
    assert not table.assign(alice[3], "alice")
    assert table.assign(alice[3], "bob")
    assert table.assign(alice[0], "alice")  # the same again: no change
    table.leave(alice[0])
    assert table.assign(fill(table, 1)[0], "alice")  # room again
