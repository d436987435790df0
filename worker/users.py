"""The users file: one ``name:bcrypt-hash[:account]`` per line.

Read by the API (the hashes, to check passwords) and by the executor (the
names and accounts, to give each user's jobs a Unix identity of their own);
written by ``worker users add``. ``#`` starts a comment. ``account``, if
given, is an existing Unix account whose uid and gid that user's jobs run
as; otherwise the server allocates one (see worker/executor/identity.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from worker.errors import ConfigError

# bcrypt looks at no more than 72 bytes; longer passwords are refused rather
# than silently truncated.
MAX_PASSWORD_BYTES = 72
BCRYPT_COST = 12
BCRYPT_HASH = re.compile(r"\$2[abxy]?\$([0-9]{2})\$[./A-Za-z0-9]{53}")
_NAME = re.compile(r"[^:#\s][^:\s]*")
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_.-]*\$?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    hashed: bytes
    account: str | None = None

    def line(self) -> str:
        tail = f":{self.account}" if self.account else ""
        return f"{self.name}:{self.hashed.decode('ascii')}{tail}"


def valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def parse_line(line: str) -> UserEntry | None:
    """The entry a line holds; None for blank lines and comments; ValueError
    for anything else."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    name, sep, rest = line.partition(":")
    hashed, _, account = rest.partition(":")
    if not sep or not valid_name(name) or not BCRYPT_HASH.fullmatch(hashed):
        raise ValueError("expected 'name:bcrypt-hash' or 'name:bcrypt-hash:account'")
    if account and not _ACCOUNT.fullmatch(account):
        raise ValueError(f"{account!r} is not a Unix account name")
    return UserEntry(name, hashed.encode("ascii"), account or None)


def load(path: Path) -> dict[str, UserEntry]:
    """Every user of the file, by name (a later line for a name wins)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read users file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read users file {path}: not UTF-8 text") from exc
    users: dict[str, UserEntry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            entry = parse_line(raw)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from exc
        if entry is not None:
            users[entry.name] = entry
    if not users:
        raise ConfigError(f"users file {path} has no users")
    return users
