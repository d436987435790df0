"""Who each user's jobs run as, and where they start.

When the server runs as root, each API user's jobs get a Unix identity of
that user's alone, with no supplementary groups: the uid and gid of the
account the users file names (``alice:HASH:account``), or else a uid (and a
gid of the same number) allocated from ``uid_range``, a range no account
uses, as systemd's DynamicUser does. Allocations are kept in
``<state_dir>/uids``, so a user keeps theirs across restarts.

Each user has a private directory, ``<state_dir>/users/<name>``, mode 0700
and owned by that identity: their jobs' default working directory and HOME.
The state directory itself is root's and can be passed through but not
listed or read (0711).

When the server is not root, every user's jobs run as the server's own user
(single-tenant mode); they still get a directory each.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from worker import users
from worker.errors import ConfigError

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int | None  # None: the server's own user
    gid: int | None
    home: Path
    login: str  # USER and LOGNAME of the jobs


class Identities:
    def __init__(self, by_user: dict[str, Identity], multi_user: bool) -> None:
        self._by_user = by_user
        self.multi_user = multi_user

    def of(self, user: str) -> Identity:
        identity = self._by_user.get(user)
        if identity is None:
            raise ConfigError(
                f"user {user!r} has no identity here (restart the server after changing "
                "the users file)"
            )
        return identity

    def uids(self) -> set[int]:
        return {i.uid for i in self._by_user.values() if i.uid is not None}


def prepare(
    users_file: Path, state_dir: Path, uid_range: tuple[int, int], root: bool | None = None
) -> Identities:
    """Give every user of the file an identity and a directory."""
    root = os.geteuid() == 0 if root is None else root
    everyone = users.load(users_file)
    homes = state_dir / "users"
    _directory(state_dir, 0o711 if root else 0o700)
    _directory(homes, 0o711 if root else 0o700)
    identities: dict[str, Identity] = {}
    if not root:
        for name in everyone:
            home = _home(homes, name, None, None)
            identities[name] = Identity(None, None, home, pwd.getpwuid(os.geteuid()).pw_name)
        return Identities(identities, multi_user=False)
    allocated = _read_allocations(state_dir / "uids")
    changed = False
    for name, entry in everyone.items():
        if entry.account is not None:
            try:
                account = pwd.getpwnam(entry.account)
            except KeyError:
                raise ConfigError(f"user {name}: no Unix account {entry.account!r}") from None
            if account.pw_uid == 0:
                raise ConfigError(f"user {name}: jobs never run as root ({entry.account!r})")
            uid, gid, login = account.pw_uid, account.pw_gid, entry.account
        else:
            if name not in allocated:
                allocated[name] = _allocate(name, uid_range, set(allocated.values()))
                changed = True
            uid = gid = allocated[name]
            login = name if _SAFE.fullmatch(name) else f"worker-{uid}"
        identities[name] = Identity(uid, gid, _home(homes, name, uid, gid), login)
    if changed:
        _write_allocations(state_dir / "uids", allocated)
    return Identities(identities, multi_user=True)


def _directory(path: Path, mode: int) -> None:
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(path, mode)
    except OSError as exc:
        raise ConfigError(f"cannot make the state directory {path}: {exc.strerror}") from exc


def _home(homes: Path, name: str, uid: int | None, gid: int | None) -> Path:
    # A name may hold any character but ':' and spaces; a directory may not.
    safe = name if _SAFE.fullmatch(name) else "u-" + name.encode().hex()
    home = homes / safe
    _directory(home, 0o700)
    if uid is not None and gid is not None:
        try:
            os.chown(home, uid, gid)
        except OSError as exc:
            raise ConfigError(f"cannot give {home} to uid {uid}: {exc.strerror}") from exc
    return home


def _taken(uid: int) -> bool:
    """Whether any account or group of this host has this number."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        with contextlib.suppress(KeyError):
            lookup(uid)
            return True
    return False


def _allocate(name: str, uid_range: tuple[int, int], used: set[int]) -> int:
    first, last = uid_range
    size = last - first + 1
    start = zlib.crc32(name.encode()) % size  # the same name tends to the same uid
    for step in range(size):
        uid = first + (start + step) % size
        if uid not in used and not _taken(uid):
            return uid
    raise ConfigError(f"no free uid left in {first}-{last} (--uid-range)")


def _read_allocations(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, uid = line.rpartition(" ")
            if name and uid.isdigit():
                found[bytes.fromhex(name).decode()] = int(uid)
    return found


def _write_allocations(path: Path, allocated: dict[str, int]) -> None:
    text = "".join(f"{name.encode().hex()} {uid}\n" for name, uid in sorted(allocated.items()))
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".uids.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)  # mkstemp made it 0600
