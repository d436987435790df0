"""bcrypt checks on worker threads, handed out in the fair queue's order.

bcrypt never runs on the event loop: each check runs on a thread of a pool
that has exactly ``workers`` threads, and the loop starts one only when a
thread is free, so the pool's own queue is never used and the order is the
fair queue's alone.

A source whose check failed rests before its next one starts (0.25 s, twice
as long after each further failure, up to 2 s; a success ends it), while the
worker is free for others. Without it, a source making up a new username for
every attempt, which no per-username back-off can catch, would keep a worker,
a whole core, busy for as long as it liked; with it, such a flood gets about
one check per 2.3 s, some 13% of a core.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from worker.api.backoff import Backoff
from worker.api.fairqueue import FairQueue

Check = Callable[[], bool]
_Job = tuple[Check, "asyncio.Future[bool]"]

FIRST_REST = 0.25
LONGEST_REST = 2.0
FORGET_REST_AFTER = 60.0


def default_rest() -> Backoff:
    return Backoff(
        free=0, first_wait=FIRST_REST, longest_wait=LONGEST_REST, forget_after=FORGET_REST_AFTER
    )


def default_workers() -> int:
    # Half the cores leaves the rest to the event loop; but at least two, so
    # that one source (which may run only one check at a time) never holds
    # every worker and a newcomer starts at once.
    return max(2, (os.cpu_count() or 2) // 2)


class CheckPool:
    def __init__(
        self,
        workers: int | None = None,
        queue: FairQueue[_Job] | None = None,
        rest: Backoff | None = None,
    ) -> None:
        self._workers = workers or default_workers()
        self._idle = self._workers
        self._queue: FairQueue[_Job] = FairQueue() if queue is None else queue
        self._rest = default_rest() if rest is None else rest
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="bcrypt")

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def submit(
        self, source: Hashable, name: str, check: Check, ahead: bool = False
    ) -> asyncio.Future[bool] | None:
        """A future for ``check``'s result; None if the queue refused it.
        ``ahead``: see ``FairQueue.push``."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self._queue.push(source, name, (check, future), ahead):
            return None
        self._start_next()
        return future

    def _start_next(self) -> None:
        loop = asyncio.get_running_loop()
        while self._idle > 0:
            job = self._queue.pop()
            if job is None:
                return
            source, (check, future) = job
            self._idle -= 1
            running = loop.run_in_executor(self._pool, check)
            running.add_done_callback(functools.partial(self._finished, source, future))

    def _finished(
        self, source: Hashable, future: asyncio.Future[bool], running: asyncio.Future[bool]
    ) -> None:
        self._idle += 1
        failed = running.cancelled() or running.exception() is not None or not running.result()
        if failed:
            self._rest.failed(source)
            # Until then the source counts as running, so it gets no turn.
            asyncio.get_running_loop().call_later(
                self._rest.remaining(source), self._rested, source
            )
        else:
            self._rest.succeeded(source)
            self._queue.done(source)
        if not future.done():
            if running.cancelled():
                future.cancel()
            elif (error := running.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(running.result())
        self._start_next()

    def _rested(self, source: Hashable) -> None:
        self._queue.done(source)
        self._start_next()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
