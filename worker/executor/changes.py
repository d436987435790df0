"""Waiting for a cgroup file such as ``cgroup.events`` to change.

The kernel tells pollers of ``cgroup.events`` when a value in it changes
(``populated`` going to 0 as the last process of a job exits) with
EPOLLPRI, not EPOLLIN, which an asyncio loop cannot wait for. So the file
gets an epoll instance of its own, edge-triggered (a change wakes once, with
no need to read the file again), and the loop waits until that instance is
readable. A change notice is a hint, never the answer: the caller reads the
file afterwards, and a wait also ends after ``seconds`` without one (the
kernel spaces notices of one file at least 10 ms apart).
"""

from __future__ import annotations

import asyncio
import os
import select
from pathlib import Path


async def changed(path: Path, seconds: float) -> None:
    """Return when ``path`` changes, or after ``seconds``; a file that
    cannot be watched (gone, out of descriptors) is simply waited for."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        await asyncio.sleep(seconds)
        return
    try:
        poller = select.epoll(1)
    except OSError:
        os.close(fd)
        await asyncio.sleep(seconds)
        return
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_later(seconds, wake)
    try:
        poller.register(fd, select.EPOLLPRI | select.EPOLLERR | select.EPOLLET)
        # A file opened after its last change may report it once at once;
        # that report is taken here so it does not end the wait.
        poller.poll(0)
        loop.add_reader(poller.fileno(), wake)
        try:
            await woken
        finally:
            loop.remove_reader(poller.fileno())
    finally:
        timer.cancel()
        poller.close()
        os.close(fd)
