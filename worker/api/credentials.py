"""A cache of recently *verified* credentials, so bcrypt runs once per login.

Nothing reversible is kept: each entry is an HMAC of user and password under a
key drawn at random when the process starts, with an expiry. Wrong passwords
are never stored, and entries are compared in constant time.

The expiry slides: each use renews an entry for another ``ttl`` seconds, but
never past ``max_age`` after the bcrypt check that made it, so a user who
keeps working is not sent back to bcrypt (and into a queue an attacker may be
flooding) every few minutes, and still every credential is checked again at
least once per ``max_age``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL = 300.0
DEFAULT_MAX_AGE = 3600.0
MAX_ENTRIES = 4096


@dataclass(slots=True)
class _Entry:
    mac: bytes
    checked: float  # when bcrypt accepted it
    expires: float


class CredentialCache:
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._max_age = max(max_age, ttl)
        self._max = max_entries
        self._clock = clock
        # Least recently used first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def key(self, user: str, password: bytes) -> bytes:
        """An opaque key for this pair (the keyed HMAC): safe to hold as a
        dictionary key, since it reveals nothing without the process's key."""
        return self._mac(user, password)

    def _mac(self, user: str, password: bytes) -> bytes:
        name = user.encode("utf-8")
        # The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        message = len(name).to_bytes(4, "big") + name + password
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, user: str, password: bytes) -> bool:
        """Whether bcrypt accepted this pair recently; a yes renews it."""
        entry = self._entries.get(user)
        if entry is None:
            return False
        now = self._clock()
        if now >= entry.expires:
            del self._entries[user]
            return False
        if not hmac.compare_digest(entry.mac, self._mac(user, password)):
            return False  # a wrong password neither renews nor evicts the entry
        entry.expires = min(now + self._ttl, entry.checked + self._max_age)
        self._entries.move_to_end(user)
        return True

    def remember(self, user: str, password: bytes) -> None:
        """Call only after bcrypt has accepted ``password`` for ``user``."""
        now = self._clock()
        self._entries[user] = _Entry(self._mac(user, password), now, now + self._ttl)
        self._entries.move_to_end(user)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
