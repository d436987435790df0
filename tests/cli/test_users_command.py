"""`worker users add` on a real terminal: asks twice, echoes nothing."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import bcrypt


def _converse(argv: list[str], answers: list[bytes]) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal, answering each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command
        os.execv(sys.executable, [sys.executable, "-m", "worker", *argv])
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the terminal closed: the child has exited
                chunk = b""
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0) + b"\n")
                seen += b"<answered>"
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_adds_a_user_after_asking_twice_without_echo(tmp_path: Path) -> None:
    users = tmp_path / "users"
    code, screen = _converse(
        ["users", "add", "carol", "--users", str(users)], [b"s3cret-pass", b"s3cret-pass"]
    )
    assert code == 0, screen
    assert screen.count(b"<answered>") == 2
    assert b"s3cret-pass" not in screen  # never echoed
    name, _, hashed = users.read_text().strip().partition(":")
    assert name == "carol"
    assert bcrypt.checkpw(b"s3cret-pass", hashed.encode())
    assert users.stat().st_mode & 0o077 == 0


def test_differing_answers_write_nothing(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("bob:" + bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode() + "\n")
    before = users.read_text()
    code, screen = _converse(["users", "add", "carol", "--users", str(users)], [b"one", b"two"])
    assert code == 1
    assert b"differ" in screen
    assert users.read_text() == before


def test_changing_a_password_replaces_the_line(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# keep me\nbob:" + bcrypt.hashpw(b"old", bcrypt.gensalt(4)).decode() + "\n")
    code, _ = _converse(["users", "add", "bob", "--users", str(users)], [b"new", b"new"])
    assert code == 0
    lines = users.read_text().splitlines()
    assert lines[0] == "# keep me" and len(lines) == 2
    assert bcrypt.checkpw(b"new", lines[1].partition(":")[2].encode())
