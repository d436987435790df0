"""HTTP Basic authentication against a file of bcrypt hashes.

The users file has one ``name:bcrypt-hash`` per line; ``#`` starts a comment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import math
from collections.abc import Callable, Hashable
from pathlib import Path

import bcrypt

from worker import users
from worker.api.backoff import Backoff
from worker.api.checkpool import CheckPool
from worker.api.credentials import CredentialCache
from worker.errors import RateLimited, Unauthorized
from worker.users import BCRYPT_COST, BCRYPT_HASH, MAX_PASSWORD_BYTES

REALM = 'Basic realm="worker"'
BAD_CREDENTIALS = "invalid username or password"
FAILED_TOO_OFTEN = "too many failed logins: wait before trying again"
TOO_MANY_WAITING = "too many logins are waiting to be checked: retry shortly"
DEFAULT_COST = BCRYPT_COST
# What a login refused for a full queue is told to wait: about one check.
QUEUE_FULL_RETRY_MS = 500


def _anyone() -> Hashable:
    """The source of a caller that cannot tell who is asking (tests, tools)."""
    return None


def _cost(hashed: bytes) -> int:
    match = BCRYPT_HASH.fullmatch(hashed.decode("ascii", "replace"))
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
        return cls({name: entry.hashed for name, entry in users.load(path).items()})

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

    Every attempt that needs bcrypt names its *source* (who is asking: a Unix
    uid, see gate.py). In order, each costing less than the next:

    1. verified credentials (credentials.py) are accepted at once, whatever
       anyone else is doing: no back-off or queue applies to them;
    2. a (source, username) in back-off after repeated failures (backoff.py)
       is refused with 429 before any bcrypt work;
    3. the check waits in the fair queue (fairqueue.py): sources take turns,
       and past small per-username, per-source and total bounds it is 429;
    4. bcrypt runs on a worker thread (checkpool.py), never on the event loop.

    Identical simultaneous logins (a fresh client pool) share one check.
    """

    def __init__(
        self,
        store: UserStore,
        cache: CredentialCache | None = None,
        pool: CheckPool | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._cache = CredentialCache() if cache is None else cache
        self._backoff = Backoff() if backoff is None else backoff
        self._pool = CheckPool() if pool is None else pool
        self._checks: dict[bytes, asyncio.Future[bool]] = {}

    async def authenticate(
        self, header: str | None, source: Callable[[], Hashable] = _anyone
    ) -> str:
        """The user named by a valid ``Authorization`` header; else
        ``Unauthorized``, or ``RateLimited`` while this source must wait.
        ``source`` is called only when bcrypt would be needed."""
        user, password = parse_basic(header)
        if self._cache.verified(user, password):
            return user
        key = (source(), user)
        wait = self._backoff.remaining(key)
        if wait > 0:
            wait_ms = math.ceil(wait * 1000)
            raise RateLimited(FAILED_TOO_OFTEN, wait_ms)
        check = self._check(key, password)
        # Counted when the check ends, not when this request does: a client
        # that hangs up before the answer must not escape its back-off.
        check.add_done_callback(functools.partial(self._settle, key, password))
        if not await asyncio.shield(check):
            raise Unauthorized(BAD_CREDENTIALS)
        return user

    def _settle(
        self, key: tuple[Hashable, str], password: bytes, check: asyncio.Future[bool]
    ) -> None:
        if check.cancelled() or check.exception() is not None:
            return
        if check.result():
            self._backoff.succeeded(key)
            self._cache.remember(key[1], password)
        else:
            self._backoff.failed(key)

    def _check(self, key: tuple[Hashable, str], password: bytes) -> asyncio.Future[bool]:
        source, user = key
        mac = self._cache.key(user, password)
        check = self._checks.get(mac)
        if check is None:
            # Among one source's names, one that has not been failing goes
            # first: a user who shares a uid with someone guessing at other
            # names waits for one check of theirs, not for all of them.
            ahead = self._backoff.failures(key) == 0
            bcrypt_check = functools.partial(self._store.check, user, password)
            check = self._pool.submit(source, user, bcrypt_check, ahead)
            if check is None:
                raise RateLimited(TOO_MANY_WAITING, QUEUE_FULL_RETRY_MS)
            self._checks[mac] = check
            check.add_done_callback(lambda _: self._checks.pop(mac, None))
        return check

    def close(self) -> None:
        self._pool.close()


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
