"""A job's standard input: written on request, never blocking the executor.

Bytes a job does not read yet wait here, up to ``MAX_PENDING``; the pipe is
fed as the job reads. Closing (EOF) happens once everything queued is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from worker.errors import StdinUnavailable

MAX_PENDING = 1 << 20


class StdinPipe:
    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd: int | None = fd
        os.set_blocking(fd, False)
        self._pending = bytearray()
        self._closing = False
        self._writing = False

    @property
    def open(self) -> bool:
        return self._fd is not None and not self._closing

    def write(self, data: bytes, close: bool) -> int:
        """Queue ``data`` (and EOF after it, if ``close``); bytes accepted."""
        if not self.open:
            raise StdinUnavailable("the job's standard input is closed")
        if len(self._pending) + len(data) > MAX_PENDING:
            raise StdinUnavailable(
                f"the job is not reading its standard input ({len(self._pending)} bytes "
                "are still waiting); try again later"
            )
        self._pending += data
        self._closing = close
        self._flush()
        return len(data)

    def _flush(self) -> None:
        while self._pending and self._fd is not None:
            try:
                written = os.write(self._fd, self._pending)
            except BlockingIOError:
                if not self._writing:
                    self._loop.add_writer(self._fd, self._flush)
                    self._writing = True
                return
            except OSError:  # EPIPE: the job closed its end; nothing more goes in
                self._pending.clear()
                self.close()
                return
            del self._pending[:written]
        if self._writing and self._fd is not None:
            self._loop.remove_writer(self._fd)
            self._writing = False
        if self._closing:
            self.close()

    def close(self) -> None:
        if self._fd is None:
            return
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None
        self._pending.clear()
