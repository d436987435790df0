"""HTTP Basic authentication against a file of bcrypt hashes.

The users file has one ``name:bcrypt-hash`` per line; ``#`` starts a comment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from pathlib import Path

import bcrypt

from worker.errors import ConfigError, Unauthorized

REALM = 'Basic realm="worker"'
BAD_CREDENTIALS = "invalid username or password"
# bcrypt looks at no more than 72 bytes; longer passwords are refused rather
# than silently truncated.
MAX_PASSWORD_BYTES = 72
_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}")
# Checked for unknown users so they cost the same as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=12))


class UserStore:
    def __init__(self, hashes: dict[str, bytes]) -> None:
        self._hashes = hashes

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
        matches = bcrypt.checkpw(password, hashed or _DUMMY_HASH)
        return matches and hashed is not None

    async def authenticate(self, header: str | None) -> str:
        """The user named by a valid ``Authorization`` header; else ``Unauthorized``."""
        user, password = parse_basic(header)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.check, user, password):
            raise Unauthorized(BAD_CREDENTIALS)
        return user


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
