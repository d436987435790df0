"""The server's secrets, its TLS key and its users file, must be its own.

Jobs of a multi-user server run as other uids: a key or users file that
those uids can read would give every user the server's identity, or every
other user's password hash to crack offline. So a root server refuses to
start with one, except the shipped demo material, which is public anyway
(and is said to be so, loudly).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worker.errors import ConfigError
from worker.resources import DEMO_KEY, DEMO_USERS, demo_file


def readable_by_others(path: Path) -> bool:
    """Whether a uid other than the owner (and root) may read ``path``: by
    its "other" bits, or by its group's, where that group is not root's."""
    info = path.stat()
    if info.st_mode & stat.S_IROTH:
        return True
    return bool(info.st_mode & stat.S_IRGRP) and info.st_gid != 0


def check(files: dict[str, Path]) -> list[str]:
    """``files``: what each one is ("TLS key", "users file") and where.
    Raises ``ConfigError`` for one that other uids could read; returns the
    warnings to give once the server is up (the public demo material)."""
    warnings: list[str] = []
    if os.geteuid() != 0:
        return warnings  # single-tenant: jobs are the server's own user anyway
    demo = {demo_file(DEMO_KEY).resolve(), demo_file(DEMO_USERS).resolve()}
    for what, path in files.items():
        try:
            exposed = readable_by_others(path)
        except OSError:
            continue  # loading it will say what is wrong
        if not exposed:
            continue
        if path.resolve() in demo:
            warnings.append(what)
            continue
        raise ConfigError(
            f"the {what} {path} is readable by other users, whose jobs could read it: "
            f"chmod 600 {path}"
        )
    if warnings:
        return [
            f"the {' and the '.join(warnings)} are the public DEMO ones: every job can read "
            "them; make your own (worker certs, worker users add)"
        ]
    return []
