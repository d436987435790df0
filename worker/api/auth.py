"""HTTP Basic authentication against a file of bcrypt hashes.

The users file has one ``name:bcrypt-hash`` per line; ``#`` starts a comment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt

from worker.api.credentials import CredentialCache
from worker.errors import ConfigError, RateLimited, Unauthorized

REALM = 'Basic realm="worker"'
BAD_CREDENTIALS = "invalid username or password"
# bcrypt looks at no more than 72 bytes; longer passwords are refused rather
# than silently truncated.
MAX_PASSWORD_BYTES = 72
_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$([0-9]{2})\$[./A-Za-z0-9]{53}")


DEFAULT_COST = 12


def _cost(hashed: bytes) -> int:
    match = _BCRYPT_HASH.fullmatch(hashed.decode("ascii", "replace"))
    return int(match.group(1)) if match else DEFAULT_COST


class UserStore:
    def __init__(self, hashes: dict[str, bytes]) -> None:
        self._hashes = hashes
        # Checked for unknown users, at the file's highest cost, so that an
        # unknown name takes as long as a wrong password.
        costs = [_cost(h) for h in hashes.values()]
        cost = max(costs, default=DEFAULT_COST)
        self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))

    @classmethod
    def load(cls, path: Path) -> UserStore:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read users file {path}: {exc}") from exc
        hashes: dict[str, bytes] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, hashed = line.partition(":")
            if not sep or not name or not _BCRYPT_HASH.fullmatch(hashed):
                raise ConfigError(f"{path}:{number}: expected 'name:bcrypt-hash'")
            hashes[name] = hashed.encode("ascii")
        if not hashes:
            raise ConfigError(f"users file {path} has no users")
        return cls(hashes)

    @property
    def names(self) -> list[str]:
        return sorted(self._hashes)

    def check(self, user: str, password: bytes) -> bool:
        """The bcrypt comparison itself; slow on purpose, so call it off the loop."""
        hashed = self._hashes.get(user)
        if len(password) > MAX_PASSWORD_BYTES:
            return False
        matches = bcrypt.checkpw(password, hashed or self._dummy)
        return matches and hashed is not None


class Authenticator:
    """Checks Basic credentials: cached verifications first, bcrypt otherwise.

    bcrypt runs on a small pool of its own, never on the event loop, and at
    most ``max_waiting`` checks may queue for it. A flood of wrong passwords
    therefore occupies at most ``workers`` cores and is turned away beyond
    that with 429, while users whose credentials are cached never wait.
    """

    def __init__(
        self,
        store: UserStore,
        cache: CredentialCache | None = None,
        workers: int | None = None,
        max_waiting: int = 16,
    ) -> None:
        self._store = store
        self._cache = cache or CredentialCache()
        workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._max_waiting = max_waiting + workers
        self._in_flight = 0
        self._checks: dict[bytes, asyncio.Future[bool]] = {}

    async def authenticate(self, header: str | None) -> str:
        """The user named by a valid ``Authorization`` header; else ``Unauthorized``."""
        user, password = parse_basic(header)
        if self._cache.verified(user, password):
            return user
        # Many connections opened at once with the same credentials (a fresh
        # client pool) share one bcrypt check instead of queueing one each.
        key = self._cache.key(user, password)
        check = self._checks.get(key)
        if check is None:
            if self._in_flight >= self._max_waiting:
                raise RateLimited("too many login attempts in progress; retry shortly", 1000)
            self._in_flight += 1  # counted now, before the check gets to run
            check = asyncio.ensure_future(self._check(user, password))
            self._checks[key] = check
            check.add_done_callback(lambda _: self._checks.pop(key, None))
        if not await asyncio.shield(check):
            raise Unauthorized(BAD_CREDENTIALS)
        return user

    async def _check(self, user: str, password: bytes) -> bool:
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, self._store.check, user, password)
        finally:
            self._in_flight -= 1
        if ok:
            self._cache.remember(user, password)
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def parse_basic(header: str | None) -> tuple[str, bytes]:
    if not header:
        raise Unauthorized("authentication required")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("use HTTP Basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user_bytes, sep, password = decoded.partition(b":")
        user = user_bytes.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    if not sep or not user:
        raise Unauthorized("malformed Basic credentials")
    return user, password
