"""`worker users add NAME --users FILE`: write a bcrypt hash, never by hand."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path

from worker.cli.exit_status import ExitStatus
from worker.errors import UsageError, WorkerError

MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past this
COST = 12


class PasswordRejected(WorkerError):
    code = "password_rejected"


def users_command(args: argparse.Namespace) -> int:
    name = args.name
    if not name or ":" in name or name.startswith("#") or any(c.isspace() for c in name):
        raise UsageError(f"user names must not be empty or contain ':' or spaces: {name!r}")
    password = _read_password(name, from_stdin=args.password_stdin)
    import bcrypt

    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=COST)).decode("ascii")
    path = Path(args.users)
    replaced = _write_user(path, name, hashed)
    verb = "Changed the password of" if replaced else "Added"
    print(f"{verb} {name} in {path}. Restart `worker serve` to use it.")
    return ExitStatus.SUCCESS


def _read_password(name: str, from_stdin: bool) -> bytes:
    if from_stdin:
        text = sys.stdin.readline().rstrip("\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for a password; use --password-stdin")
        text = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Repeat it: ") != text:
            raise PasswordRejected("the two passwords differ; nothing was written")
    password = text.encode("utf-8")
    if not password:
        raise PasswordRejected("the password is empty; nothing was written")
    if len(password) > MAX_PASSWORD_BYTES:
        raise PasswordRejected(
            f"the password is longer than {MAX_PASSWORD_BYTES} bytes; nothing was written"
        )
    return password


def _write_user(path: Path, name: str, hashed: str) -> bool:
    """Add or replace ``name``'s line, atomically, keeping the file private."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkerError(f"cannot read {path}: {exc}") from exc
    replaced = False
    for index, line in enumerate(lines):
        if line.strip().partition(":")[0] == name and not line.lstrip().startswith("#"):
            lines[index] = f"{name}:{hashed}"
            replaced = True
    if not replaced:
        lines.append(f"{name}:{hashed}")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as exc:
        raise WorkerError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return replaced
