"""Starting one job process: its own session, stdin an open pipe, 2>&1."""

from __future__ import annotations

import errno
import os
import subprocess
from dataclasses import dataclass


class SpawnError(Exception):
    """The command could not be started; the message is for the job's user."""


@dataclass(frozen=True, slots=True)
class Spawned:
    process: subprocess.Popen[bytes]
    stdin_fd: int  # write end, kept open and unwritten so reads block
    output_fd: int  # non-blocking read end of stdout+stderr


def spawn(
    command: str,
    args: tuple[str, ...],
    env: dict[bytes, bytes] | None = None,
    cwd: str | None = None,
) -> Spawned:
    opened: list[int] = []
    try:
        stdin_r, stdin_w = os.pipe()
        opened += (stdin_r, stdin_w)
        out_r, out_w = os.pipe()
        opened += (out_r, out_w)
        process = subprocess.Popen(
            [command, *args],
            stdin=stdin_r,
            stdout=out_w,
            stderr=out_w,  # the same pipe, so the order of writes is kept
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=cwd,
        )
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        if cwd is not None and exc.filename == cwd:
            raise SpawnError(f"{cwd}: cannot change to this directory: {exc.strerror}") from exc
        raise SpawnError(describe_spawn_error(command, exc)) from exc
    os.close(stdin_r)
    os.close(out_w)
    os.set_blocking(out_r, False)
    return Spawned(process=process, stdin_fd=stdin_w, output_fd=out_r)


def describe_spawn_error(command: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return f"{command}: command not found"
    if exc.errno == errno.EACCES:
        return f"{command}: permission denied"
    if exc.errno == errno.ENOEXEC:
        return f"{command}: not an executable format"
    reason = exc.strerror or str(exc)
    return f"{command}: cannot start: {reason}"
