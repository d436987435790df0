"""The open-connection table: caps in total and per peer address, and who
makes room when a cap is reached.

A newcomer that would go over a cap is let in only by shedding someone else:
first the oldest connection that has not yet authenticated a request and is
not being answered (a client that cannot log in is the cheapest to lose, and
an attacker's idle or trickling sockets are exactly those), then the oldest
idle authenticated one (its client just reconnects), then the oldest
unauthenticated one being answered (a first login waiting for bcrypt comes
last); if every connection is authenticated and busy, the newcomer is
refused. So however many sockets are thrown at the server, it holds at most
the cap, and users who logged in keep their connections. One user holds at
most ``max_per_user`` connections, so no single login can fill the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from worker.config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MAX_CONNECTIONS_PER_USER,
)
from worker.errors import ConfigError

# Descriptors the API needs besides its clients' sockets: the listener, the
# executor's pipe, the event loop's own, logging.
RESERVED_DESCRIPTORS = 64
# How far down the unauthenticated ones to look for one not being answered:
# a bounded cost per newcomer, however full the table.
LOOK_AHEAD = 64


def fit_caps(max_total: int, max_per_peer: int, open_files: int) -> tuple[int, int]:
    """The caps, lowered where the open-files limit could not honour them:
    the server must run out of table slots long before it runs out of
    descriptors, or nobody at all could connect."""
    room = max(1, open_files - RESERVED_DESCRIPTORS)
    total = min(max_total, room)
    return total, min(max_per_peer, total)


class Member(Protocol):
    """A connection, as the table sees it."""

    def is_authenticated(self) -> bool: ...  # once true, stays true

    def is_idle(self) -> bool: ...

    def is_busy(self) -> bool: ...  # a request of its is being answered

    def shed(self) -> None:
        """Close at once; the table has already forgotten it."""


class _Group:
    """One population (everyone, or one peer's), oldest first in each dict."""

    __slots__ = ("anonymous", "authenticated")

    def __init__(self) -> None:
        self.anonymous: dict[Member, None] = {}
        self.authenticated: dict[Member, None] = {}

    def __len__(self) -> int:
        return len(self.anonymous) + len(self.authenticated)


class ConnectionTable:
    def __init__(
        self,
        max_total: int = DEFAULT_MAX_CONNECTIONS,
        max_per_peer: int = DEFAULT_MAX_CONNECTIONS_PER_PEER,
        max_per_user: int = DEFAULT_MAX_CONNECTIONS_PER_USER,
    ) -> None:
        if min(max_total, max_per_peer, max_per_user) < 1:
            raise ConfigError("the connection caps must be at least 1")
        self.max_total = max_total
        self.max_per_peer = min(max_per_peer, max_total)
        self.max_per_user = min(max_per_user, max_total)
        self._users: dict[str, set[Member]] = {}
        self._user_of: dict[Member, str] = {}
        self._all = _Group()
        self._peers: dict[str, _Group] = {}
        self._peer_of: dict[Member, str] = {}
        self.shed_count = 0
        self.refused_count = 0

    def __len__(self) -> int:
        return len(self._peer_of)

    def __contains__(self, member: object) -> bool:
        return member in self._peer_of

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._peer_of))

    def count(self, peer: str) -> int:
        group = self._peers.get(peer)
        return len(group) if group is not None else 0

    def admit(self, member: Member, peer: str) -> bool:
        """Take ``member`` in, shedding another connection if a cap says so.
        False: refused (every candidate for shedding is authenticated and
        busy); the caller closes it."""
        group = self._peers.get(peer)
        if group is not None and len(group) >= self.max_per_peer and not self._make_room(group):
            self.refused_count += 1
            return False
        if len(self) >= self.max_total and not self._make_room(self._all):
            self.refused_count += 1
            return False
        if group is None:
            group = self._peers[peer] = _Group()
        self._peer_of[member] = peer
        self._all.anonymous[member] = None
        group.anonymous[member] = None
        return True

    def assign(self, member: Member, user: str) -> bool:
        """``member`` is ``user``'s now; False if that user already holds
        ``max_per_user`` connections (the caller refuses the request)."""
        if self._user_of.get(member) == user or member not in self._peer_of:
            return True
        held = self._users.setdefault(user, set())
        if len(held) >= self.max_per_user:
            return False
        self._forget_user(member)
        held.add(member)
        self._user_of[member] = user
        return True

    def _forget_user(self, member: Member) -> None:
        user = self._user_of.pop(member, None)
        if user is not None:
            held = self._users[user]
            held.discard(member)
            if not held:
                del self._users[user]

    def leave(self, member: Member) -> None:
        """Forget ``member`` (closed); harmless if it is not here."""
        self._forget_user(member)
        peer = self._peer_of.pop(member, None)
        if peer is None:
            return
        group = self._peers[peer]
        for population in (self._all, group):
            population.anonymous.pop(member, None)
            population.authenticated.pop(member, None)
        if not group:
            del self._peers[peer]

    def _make_room(self, group: _Group) -> bool:
        victim = self._oldest_anonymous(group, idle_only=True)
        if victim is None:
            victim = _oldest_idle(group)
        if victim is None:
            victim = self._oldest_anonymous(group, idle_only=False)
        if victim is None:
            return False
        self.leave(victim)
        self.shed_count += 1
        victim.shed()
        return True

    def _oldest_anonymous(self, group: _Group, idle_only: bool) -> Member | None:
        # Authentication is asked lazily, here, so that serving a request
        # costs the table nothing; whoever turns out authenticated moves to
        # the other dict for good, so each member is passed over once.
        promoted: list[Member] = []
        victim = None
        looked = 0
        for member in group.anonymous:
            if member.is_authenticated():
                promoted.append(member)
                continue
            if not idle_only or not member.is_busy():
                victim = member
                break
            looked += 1
            if looked >= LOOK_AHEAD:
                break
        for member in promoted:
            self._promote(member)
        return victim

    def _promote(self, member: Member) -> None:
        for population in (self._all, self._peers[self._peer_of[member]]):
            del population.anonymous[member]
            population.authenticated[member] = None


def _oldest_idle(group: _Group) -> Member | None:
    # In the order they were found authenticated: near enough to their age.
    for member in group.authenticated:
        if member.is_idle():
            return member
    return None
