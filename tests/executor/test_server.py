"""The executor's request handler: deadlines, with a real executor."""

from __future__ import annotations

import time

import pytest

from tests.executor.test_core import run, start
from worker.executor.core import Executor
from worker.executor.server import handle
from worker.protocol import (
    ErrorReply,
    JobCreated,
    JobInfo,
    KillJob,
    Request,
    RunJob,
    StdinWritten,
    WriteStdin,
)


def expired() -> float:
    return time.monotonic() - 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda job: RunJob(1, "alice", "touch", ("/nonexistent/x",), deadline=expired()),
        lambda job: KillJob(2, "alice", job, deadline=expired()),
        lambda job: WriteStdin(3, "alice", job, b"x\n", deadline=expired()),
    ],
    ids=["run", "kill", "stdin"],
)
def test_a_request_past_its_deadline_does_nothing(make: object) -> None:
    async def test(ex: Executor) -> None:
        job = await start(ex, "sleep", ("300",))
        request: Request = make(job)  # type: ignore[operator]
        reply = await handle(ex, request)
        assert isinstance(reply, ErrorReply)
        assert reply.code == "request_expired"
        assert "nothing was done" in reply.message
        assert ex.get("alice", job).status.value == "running"
        assert ex.jobs("alice")[0][0].id == job  # no job was added

    run(test)


def test_a_request_within_its_deadline_is_done() -> None:
    async def test(ex: Executor) -> None:
        soon = time.monotonic() + 10
        created = await handle(ex, RunJob(1, "alice", "cat", (), deadline=soon))
        assert isinstance(created, JobCreated)
        written = await handle(ex, WriteStdin(2, "alice", created.job_id, b"x", deadline=soon))
        assert isinstance(written, StdinWritten) and written.accepted == 1
        killed = await handle(ex, KillJob(3, "alice", created.job_id, deadline=soon))
        assert isinstance(killed, JobInfo) and killed.job.status.value == "killed"

    run(test)
