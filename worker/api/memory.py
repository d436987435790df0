"""Giving memory back to the system after a burst of closed connections.

Thousands of connections made and dropped leave memory that is free but
still resident: connections caught in reference cycles (Sanic's, uvloop's)
wait for Python's full collection, which may not come for a long while, and
glibc keeps the pages of freed blocks. Once a burst of closes is over, one
``gc.collect()`` and one ``malloc_trim(0)`` give it back. While the burst
goes on, only the trim runs, once a second: a full collection among
thousands of live connections would stall every request for a tenth of a
second.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
from collections.abc import Callable

# Closes that make a burst, counted over DELAY seconds.
BURST = 256
DELAY = 1.0


_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def pin_mmap_threshold() -> None:
    """Keep large blocks (each TLS connection's 256 KiB read buffer among
    them) in mmaps of their own, returned to the system when freed.

    glibc raises its mmap threshold each time such a block is freed, after
    which the buffers of thousands of connections all come from the heap and
    leave it a gigabyte wide; setting the threshold once turns that off."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, 128 << 10)


def _malloc_trim() -> Callable[[], object] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Trimmer:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        trim: Callable[[], object] | None = None,
        collect: Callable[[], object] = gc.collect,
    ) -> None:
        self._loop = loop
        self._trim = trim if trim is not None else _malloc_trim()
        self._collect = collect
        self._closes = 0
        self._timer: asyncio.TimerHandle | None = None
        self.trims = self.collections = 0

    def closed(self) -> None:
        """One connection closed."""
        if self._trim is None:
            return
        self._closes += 1
        if self._closes >= BURST and self._timer is None:
            self._arm()

    def _arm(self) -> None:
        self._closes = 0
        self._timer = self._loop.call_later(DELAY, self._look)

    def _look(self) -> None:
        """Trim now; collect too, and stop looking, once the burst is over."""
        assert self._trim is not None
        if self._closes >= BURST:
            self._arm()
        else:
            self._timer = None
            self._closes = 0
            self.collections += 1
            self._collect()
        self.trims += 1
        self._trim()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
