"""The API's side of the executor pipe.

One reader task owns the pipe's incoming side and resolves a future per
request id, so any number of handlers can wait on the executor at once and the
event loop never blocks on the pipe.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from worker.api.settled import SettledJobs
from worker.errors import ExecutorTimeout, ExecutorUnavailable, WorkerError, from_code
from worker.protocol import (
    ErrorReply,
    FindJob,
    GetStatus,
    JobInfo,
    JobList,
    JobsForgotten,
    JobSnapshot,
    ListJobs,
    Outbox,
    ProtocolError,
    Reply,
    Request,
    read_message,
)

log = logging.getLogger("worker.api")

R = TypeVar("R", bound=Reply)
# Told (request type name, seconds) of every reply received, for metrics.
RoundTripHook = Callable[[str, float], None]

GONE = "the executor is not running; restart `worker serve`"
# The executor answers in milliseconds; one that says nothing for this long
# is stopped or stuck, and a client should hear so rather than hang.
DEFAULT_TIMEOUT = 10.0
# A deadline is this much earlier than the API's own (or a quarter of it,
# for short timeouts), so that a reply made just before it still arrives.
DEADLINE_MARGIN = 1.0
# Requests whose replies the executor builds in the very turn it looks into
# its job log: what they show of a settled job is safe to keep (see settled.py).
LOOKUPS = (GetStatus, FindJob, ListJobs)


class ExecutorClient:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """``timeout``: how long a request waits for its answer by default."""
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._outbox: Outbox | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closed = False
        self.on_round_trip: RoundTripHook | None = None
        self.settled = SettledJobs()
        self._lookups: set[int] = set()  # request ids of LOOKUPS in flight

    async def connect(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        self._outbox = Outbox(writer)
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read_replies(reader))

    async def call(
        self,
        make: Callable[[int], Request],
        expect: type[R],
        timeout: float | None = None,
        unanswered: str = "try again",
    ) -> R:
        """Send the request built by ``make(request_id)`` and await its reply,
        for at most ``timeout`` seconds; then ``ExecutorTimeout`` says
        "the executor did not answer within N s; <unanswered>".

        An ``ErrorReply`` is raised as the ``WorkerError`` it stands for.
        """
        if self._closed or self._outbox is None:
            raise ExecutorUnavailable(GONE)
        timeout = self.timeout if timeout is None else timeout
        request_id = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            request = make(request_id)
            if isinstance(request, LOOKUPS):
                self._lookups.add(request_id)
            sent = time.perf_counter()
            self._outbox.send(request)
            async with asyncio.timeout(timeout):
                await self._outbox.drain()
                reply = await future
            if self.on_round_trip is not None:
                self.on_round_trip(type(request).__name__, time.perf_counter() - sent)
        except TimeoutError:
            raise ExecutorTimeout(
                f"the executor did not answer within {timeout:g} s; {unanswered}"
            ) from None
        except (ConnectionError, RuntimeError) as exc:
            raise ExecutorUnavailable(GONE) from exc
        finally:
            self._pending.pop(request_id, None)
            self._lookups.discard(request_id)
        if isinstance(reply, ErrorReply):
            raise from_code(reply.code, reply.message)
        if not isinstance(reply, expect):
            raise WorkerError(f"executor sent {type(reply).__name__}, expected {expect.__name__}")
        return reply

    def settled_job(self, owner: str, job_id: int) -> JobSnapshot | None:
        """The owner's job as kept since it settled; None while the executor
        is unreachable (then the call says so)."""
        return None if self._closed else self.settled.get(owner, job_id)

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_message(reader, self.settled.held)
                if message is None:
                    break
                # In the pipe's order, as they come: a notice that follows a
                # reply always undoes what that reply kept.
                if isinstance(message, JobsForgotten):
                    self.settled.forget(message.job_ids)
                    continue
                request_id = getattr(message, "request_id", -1)
                if request_id in self._lookups:
                    if isinstance(message, JobInfo):
                        self.settled.keep((message.job,))
                    elif isinstance(message, JobList):
                        self.settled.keep(message.jobs)
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(message)  # type: ignore[arg-type]
        except (ProtocolError, ConnectionError) as exc:
            log.error("executor pipe broken: %s", exc)
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        self._closed = True
        self.settled.clear()  # "the executor is gone" is the answer now
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ExecutorUnavailable(GONE))

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()


def deadline_for(timeout: float) -> float:
    """The deadline to give a request the API waits ``timeout`` s for."""
    return time.monotonic() + timeout - min(DEADLINE_MARGIN, timeout / 4)
