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
from worker.users import BCRYPT_COST, MAX_PASSWORD_BYTES, UserEntry, parse_line, valid_name


class PasswordRejected(WorkerError):
    code = "password_rejected"


def users_command(args: argparse.Namespace) -> int:
    name = args.name
    if not valid_name(name):
        raise UsageError(f"user names must not be empty or contain ':' or spaces: {name!r}")
    account = getattr(args, "account", None)
    if account is not None:
        _check_account(account)
    password = _read_password(name, from_stdin=args.password_stdin)
    import bcrypt

    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=BCRYPT_COST))
    path = Path(args.users)
    replaced = _write_user(path, name, hashed, account)
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


def _check_account(account: str) -> None:
    import pwd

    try:
        pwd.getpwnam(account)
    except KeyError:
        raise UsageError(f"there is no Unix account {account!r} on this host") from None


def _write_user(path: Path, name: str, hashed: bytes, account: str | None) -> bool:
    """Add or replace ``name``'s line, atomically, keeping the file private;
    a changed password keeps the account the line named, unless another is
    given."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkerError(f"cannot read {path}: {exc}") from exc
    replaced = False
    for index, line in enumerate(lines):
        try:
            entry = parse_line(line)
        except ValueError:
            continue  # left as it is: the server will say what is wrong with it
        if entry is not None and entry.name == name:
            lines[index] = UserEntry(name, hashed, account or entry.account).line()
            replaced = True
    if not replaced:
        lines.append(UserEntry(name, hashed, account).line())
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
