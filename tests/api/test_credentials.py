from __future__ import annotations

from worker.api.credentials import CredentialCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_the_remembered_pair_is_verified() -> None:
    cache = CredentialCache(ttl=60, clock=Clock())
    assert not cache.verified("alice", b"wonderland")
    cache.remember("alice", b"wonderland")
    assert cache.verified("alice", b"wonderland")
    assert not cache.verified("alice", b"wonderland!")
    assert not cache.verified("bob", b"wonderland")


def test_entries_expire_when_unused() -> None:
    clock = Clock()
    cache = CredentialCache(ttl=60, clock=clock)
    cache.remember("alice", b"pw")
    clock.now += 60.1
    assert not cache.verified("alice", b"pw")
    # Gone for good: a later right guess does not bring it back.
    clock.now -= 1
    assert not cache.verified("alice", b"pw")


def test_use_renews_an_entry_up_to_its_maximum_age() -> None:
    clock = Clock()
    cache = CredentialCache(ttl=60, max_age=300, clock=clock)
    cache.remember("alice", b"pw")
    for _ in range(4):  # used every 50 s, well past the first 60 s
        clock.now += 50
        assert cache.verified("alice", b"pw")
    clock.now += 50  # 250 s after the check
    assert cache.verified("alice", b"pw")
    clock.now += 50  # 300 s: the maximum age, however busy the user
    assert not cache.verified("alice", b"pw")


def test_a_new_check_starts_a_new_maximum_age() -> None:
    clock = Clock()
    cache = CredentialCache(ttl=60, max_age=100, clock=clock)
    cache.remember("alice", b"pw")
    clock.now += 90
    cache.remember("alice", b"pw")
    clock.now += 50
    assert cache.verified("alice", b"pw")


def test_a_wrong_password_neither_renews_nor_evicts() -> None:
    clock = Clock()
    cache = CredentialCache(ttl=60, clock=clock)
    cache.remember("alice", b"pw")
    for _ in range(5):
        clock.now += 11
        assert not cache.verified("alice", b"guess")
    assert cache.verified("alice", b"pw")  # 55 s on: still there
    clock.now += 59  # renewed by that right use, not by the guesses
    assert cache.verified("alice", b"pw")
    clock.now += 60.1
    assert not cache.verified("alice", b"pw")


def test_user_and_password_boundary_matters() -> None:
    cache = CredentialCache(clock=Clock())
    cache.remember("ab", b"c")
    assert not cache.verified("a", b"bc")


def test_nothing_reversible_is_stored_and_keys_differ_per_process() -> None:
    one, two = CredentialCache(clock=Clock()), CredentialCache(clock=Clock())
    one.remember("alice", b"wonderland")
    two.remember("alice", b"wonderland")
    stored_one = one._entries["alice"].mac
    stored_two = two._entries["alice"].mac
    assert b"wonderland" not in stored_one
    assert stored_one != stored_two  # a random key per cache


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = CredentialCache(max_entries=2, clock=Clock())
    for name in ("a", "b", "c"):
        cache.remember(name, b"pw")
    assert not cache.verified("a", b"pw")
    assert cache.verified("b", b"pw") and cache.verified("c", b"pw")
    assert cache.verified("b", b"pw")  # b is now the most recently used
    cache.remember("d", b"pw")
    assert cache.verified("b", b"pw") and not cache.verified("c", b"pw")
