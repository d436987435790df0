"""The report pipe of a job's clone: what jobinit tells the executor about
its start, one line each (written by worker/executor/jobinit.py):

    E<errno> <phase> [step]   the start failed (phase: setup, cwd or exec)
    S                         the command runs (said by the job's init)
    X<wait status>            the main process ended (seen by its init)

End of file without an E says the command runs (a direct exec closed the
pipe), or that the init is gone.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable


def read_lines(
    loop: asyncio.AbstractEventLoop,
    fd: int,
    on_line: Callable[[str], None],
    on_eof: Callable[[], None],
) -> Callable[[], None]:
    """Call ``on_line`` for each line from ``fd`` as it comes, then close
    ``fd`` and call ``on_eof`` at its end. Returns ``drain``: handle at once
    every line written so far (and the end, if every writer is gone), for
    when the writer's end is known before the loop has read its last words."""
    os.set_blocking(fd, False)
    pending = bytearray()
    closed = False

    def readable() -> bool:  # whether more may be there at once
        nonlocal closed
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        pending.extend(data)
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end]).decode("ascii", "replace")
            del pending[: end + 1]
            on_line(line)
        if not data:
            closed = True
            loop.remove_reader(fd)
            os.close(fd)
            on_eof()
        return not closed

    def drain() -> None:
        while not closed and readable():
            pass

    loop.add_reader(fd, readable)
    return drain


def describe(failure: str, command: str, cwd: bytes | None) -> str:
    """The one-line error of an ``E`` report, as a user reads it."""
    code_text, _, rest = failure.partition(" ")
    phase, _, step = rest.partition(" ")
    code = int(code_text) if code_text.isdigit() else errno.EINVAL
    reason = os.strerror(code)
    if phase == "cwd":
        where = os.fsdecode(cwd) if cwd is not None else "?"
        return f"{where}: cannot change to this directory: {reason}"
    if phase == "exec":
        if code == errno.ENOENT:
            return f"{command}: command not found"
        if code == errno.EACCES:
            return f"{command}: permission denied"
        if code == errno.ENOEXEC:
            return f"{command}: not an executable format"
    if step and ":" in step:  # an unexpected error: it names itself
        return f"{command}: cannot start: {step}"
    if step:
        return f"{command}: cannot start: {step}: {reason}"
    return f"{command}: cannot start: {reason}"
