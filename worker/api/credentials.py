"""A cache of recently *verified* credentials, so bcrypt runs once per login.

Nothing reversible is kept: each entry is an HMAC of user and password under a
key drawn at random when the process starts, with an expiry. Wrong passwords
are never stored, and entries are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_TTL = 300.0
MAX_ENTRIES = 4096


class CredentialCache:
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

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
        entry = self._entries.get(user)
        if entry is None:
            return False
        mac, expires = entry
        if self._clock() >= expires:
            del self._entries[user]
            return False
        return hmac.compare_digest(mac, self._mac(user, password))

    def remember(self, user: str, password: bytes) -> None:
        """Call only after bcrypt has accepted ``password`` for ``user``."""
        self._entries[user] = (self._mac(user, password), self._clock() + self._ttl)
        self._entries.move_to_end(user)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
