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


def test_entries_expire() -> None:
    clock = Clock()
    cache = CredentialCache(ttl=60, clock=clock)
    cache.remember("alice", b"pw")
    clock.now += 59.9
    assert cache.verified("alice", b"pw")
    clock.now += 0.2
    assert not cache.verified("alice", b"pw")


def test_user_and_password_boundary_matters() -> None:
    cache = CredentialCache(clock=Clock())
    cache.remember("ab", b"c")
    assert not cache.verified("a", b"bc")


def test_nothing_reversible_is_stored_and_keys_differ_per_process() -> None:
    one, two = CredentialCache(clock=Clock()), CredentialCache(clock=Clock())
    one.remember("alice", b"wonderland")
    two.remember("alice", b"wonderland")
    stored_one = one._entries["alice"][0]
    stored_two = two._entries["alice"][0]
    assert b"wonderland" not in stored_one
    assert stored_one != stored_two  # a random key per cache


def test_size_is_bounded_oldest_first() -> None:
    cache = CredentialCache(max_entries=2, clock=Clock())
    for name in ("a", "b", "c"):
        cache.remember(name, b"pw")
    assert not cache.verified("a", b"pw")
    assert cache.verified("b", b"pw") and cache.verified("c", b"pw")
