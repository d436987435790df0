"""The API's pipe client against the real executor loop, in one process."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.api.executor_client import ExecutorClient
from worker.child import Status
from worker.config import ExecutorConfig
from worker.errors import ExecutorUnavailable, JobNotFound
from worker.executor.server import serve
from worker.protocol import (
    DeleteJobs,
    GetStatus,
    JobCreated,
    JobInfo,
    JobList,
    JobsDeleted,
    JobStatus,
    KillJob,
    ListJobs,
    RunJob,
    WaitJob,
)


class Said:
    """Stands for the supervisor's end of the status pipe."""

    def __init__(self) -> None:
        self.messages: list[object] = []

    def send(self, message: object) -> None:
        self.messages.append(message)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Where job uids (as root) can reach their directories: not under
    /tmp/pytest-of-root, which only root may enter."""
    path = Path(tempfile.mkdtemp(prefix="worker-client-test-", dir="/var/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_many_requests_in_flight_while_a_kill_waits(state_dir: Path) -> None:
    config = ExecutorConfig(
        kill_grace=2, state_dir=state_dir, uid_range=(390_000, 390_099), namespaces=False
    )
    said = Said()

    async def main() -> None:
        api_side, executor_side = socket.socketpair()
        status = Status(said, "executor")  # type: ignore[arg-type]
        executor = asyncio.create_task(serve(executor_side, config, status, "no cgroups"))
        client = ExecutorClient()
        await client.connect(api_side)
        created = await client.call(
            lambda rid: RunJob(rid, "alice", "sh", ("-c", "trap '' TERM; sleep 300")), JobCreated
        )
        job_id = created.job_id
        kill = asyncio.create_task(client.call(lambda rid: KillJob(rid, "alice", job_id), JobInfo))
        replies = await asyncio.gather(
            *(client.call(lambda rid: GetStatus(rid, "alice", job_id), JobInfo) for _ in range(50))
        )
        # The TERM-ignoring job holds the kill for its 2 s grace period, yet
        # every status request has been answered meanwhile.
        assert not kill.done()
        assert {r.job.status for r in replies} == {JobStatus.RUNNING}
        assert (await kill).job.status is JobStatus.KILLED
        with pytest.raises(JobNotFound, match="job 77 not found"):
            await client.call(lambda rid: GetStatus(rid, "alice", 77), JobInfo)
        await client.close()  # the executor sees the pipe close and stops
        await asyncio.wait_for(executor, 10)

    asyncio.run(main())
    assert said.messages[0][:2] == ("ready", "executor")  # type: ignore[index]


def test_requests_fail_with_503_error_once_the_executor_is_gone() -> None:
    async def main() -> None:
        api_side, executor_side = socket.socketpair()
        client = ExecutorClient()
        await client.connect(api_side)
        pending = asyncio.create_task(client.call(lambda rid: GetStatus(rid, "a", 1), JobInfo))
        await asyncio.sleep(0)  # let the request reach the pipe
        executor_side.close()
        with pytest.raises(ExecutorUnavailable) as caught:
            await asyncio.wait_for(pending, 5)
        assert caught.value.http_status == 503
        with pytest.raises(ExecutorUnavailable):
            await client.call(lambda rid: GetStatus(rid, "a", 1), JobInfo)
        await client.close()

    asyncio.run(main())


def test_settled_jobs_are_kept_until_forgotten(state_dir: Path) -> None:
    """A finished job's status is kept by the API after one look; its
    deletion, by request or by retention, drops it before the request's
    own reply arrives (a status right after `worker rm` is a 404)."""
    config = ExecutorConfig(
        state_dir=state_dir, uid_range=(390_100, 390_199), namespaces=False, keep_finished=2
    )

    async def main() -> None:
        api_side, executor_side = socket.socketpair()
        status = Status(Said(), "executor")  # type: ignore[arg-type]
        executor = asyncio.create_task(serve(executor_side, config, status, "no cgroups"))
        client = ExecutorClient()
        await client.connect(api_side)

        async def finished(*args: str) -> int:
            made = await client.call(lambda rid: RunJob(rid, "alice", "true", args), JobCreated)
            job_id = made.job_id
            reply = await client.call(lambda rid: WaitJob(rid, "alice", job_id, 10.0), JobInfo)
            assert reply.job.status is JobStatus.COMPLETED
            return job_id

        first = await finished()
        assert client.settled_job("alice", first) is None  # a wait's reply is not kept
        await client.call(lambda rid: GetStatus(rid, "alice", first), JobInfo)
        kept = client.settled_job("alice", first)
        assert kept is not None and kept.settled and kept.status is JobStatus.COMPLETED
        assert client.settled_job("bob", first) is None
        listed = await client.call(lambda rid: ListJobs(rid, "alice"), JobList)
        assert any(job is kept for job in listed.jobs)  # decoded as the one kept, not a copy

        deleted = await client.call(lambda rid: DeleteJobs(rid, "alice", (first,)), JobsDeleted)
        assert deleted.deleted == (first,)
        assert client.settled_job("alice", first) is None

        # Retention: a third finished job makes the oldest of three go.
        jobs = []
        for _ in range(3):
            job_id = await finished()
            await client.call(lambda rid, j=job_id: GetStatus(rid, "alice", j), JobInfo)
            assert client.settled_job("alice", job_id) is not None
            jobs.append(job_id)
        gone = jobs[0]
        assert client.settled_job("alice", gone) is None
        with pytest.raises(JobNotFound):
            await client.call(lambda rid: GetStatus(rid, "alice", gone), JobInfo)
        assert all(client.settled_job("alice", j) is not None for j in jobs[1:])
        await client.close()
        await asyncio.wait_for(executor, 10)

    asyncio.run(main())
