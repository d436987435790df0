"""The executor's job log with real processes, in this process's event loop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psutil
import pytest

from worker.config import ExecutorConfig
from worker.errors import ExecutorUnavailable, JobNotFound, JobNotRunning
from worker.executor.core import Executor
from worker.protocol import JobStatus

T = TypeVar("T")
GRACE = 0.5


def run(test: Callable[[Executor], Awaitable[T]], grace: float = GRACE) -> T:
    async def main() -> T:
        executor = Executor(ExecutorConfig(kill_grace=grace))
        try:
            return await test(executor)
        finally:
            await executor.shutdown()

    return asyncio.run(main())


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def finished(executor: Executor, job_id: int) -> JobStatus:
    job = executor.get("alice", job_id)
    await asyncio.wait_for(job.ended.wait(), 10)
    return job.status


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def output(executor: Executor, job_id: int) -> bytes:
    job = executor.get("alice", job_id)
    return job.output.read(0, job.output.size)[1]


def test_completed_job_keeps_its_exact_output() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "printf", ("a\\0b\\377c",))
        assert await finished(ex, job_id) is JobStatus.COMPLETED
        assert output(ex, job_id) == b"a\x00b\xffc"
        snap = ex.get("alice", job_id).snapshot()
        assert snap.exit_code == 0 and snap.signal is None
        assert snap.started_at is not None and snap.ended_at is not None

    run(test)


def test_output_is_complete_when_status_turns_final() -> None:
    async def test(ex: Executor) -> None:
        # 1 MiB is far more than a pipe holds, so the drain at exit matters.
        ids = [ex.run("alice", "head", ("-c", "1048576", "/dev/zero")) for _ in range(5)]
        for job_id in ids:
            assert await finished(ex, job_id) is JobStatus.COMPLETED
            assert ex.get("alice", job_id).output.size == 1 << 20

    run(test)


def test_spawn_failure_is_failed_with_reason() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "definitely-not-a-command", ())
        job = ex.get("alice", job_id)
        assert job.status is JobStatus.FAILED
        assert (job.exit_code, job.pid) == (None, None)
        assert output(ex, job_id) == b"definitely-not-a-command: command not found\n"
        no_exec = ex.run("alice", "/", ())  # a directory: execve says EACCES
        assert output(ex, no_exec) == b"/: permission denied\n"

    run(test)


def test_ids_increase_and_jobs_run_concurrently() -> None:
    async def test(ex: Executor) -> None:
        started = time.monotonic()
        ids = [ex.run("alice", "sleep", ("1",)) for _ in range(10)]
        assert ids == list(range(1, 11))
        for job_id in ids:
            assert await finished(ex, job_id) is JobStatus.COMPLETED
        assert time.monotonic() - started < 8  # serially it would be 10 s

    run(test)


def test_stdin_reader_blocks_and_shows_output_so_far() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "sh", ("-c", "echo before; read x; echo after"))
        await until(lambda: output(ex, job_id) == b"before\n")
        await asyncio.sleep(0.2)  # give a wrongly closed stdin time to show itself
        assert ex.get("alice", job_id).status is JobStatus.RUNNING
        assert output(ex, job_id) == b"before\n"

    run(test)


def test_kill_terminates_the_whole_tree() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "sh", ("-c", "sleep 300 & sleep 300 & wait"))
        job = ex.get("alice", job_id)
        assert job.pid is not None
        await until(lambda: len(psutil.Process(job.pid).children()) == 2)
        pids = [job.pid, *(c.pid for c in psutil.Process(job.pid).children())]
        snap = await ex.kill("alice", job_id)
        assert snap.status is JobStatus.KILLED
        assert snap.signal == 15
        assert not any(alive(pid) for pid in pids)

    run(test)


def test_term_ignoring_job_is_killed_after_the_grace_period() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "sh", ("-c", "trap '' TERM; echo ready; sleep 300 & wait"))
        await until(lambda: output(ex, job_id) == b"ready\n")
        started = time.monotonic()
        snap = await ex.kill("alice", job_id)
        took = time.monotonic() - started
        assert snap.status is JobStatus.KILLED
        assert snap.signal == 9
        assert GRACE <= took < GRACE + 5

    run(test)


def test_kill_of_finished_job_is_a_conflict() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "true", ())
        await finished(ex, job_id)
        with pytest.raises(JobNotRunning, match=r"job \d+ is not running \(status: completed\)"):
            await ex.kill("alice", job_id)
        failed = ex.run("alice", "no-such-thing", ())
        with pytest.raises(JobNotRunning, match="status: failed"):
            await ex.kill("alice", failed)

    run(test)


def test_kill_just_after_exit_is_a_conflict_not_a_kill() -> None:
    async def test(ex: Executor) -> None:
        # The job exits, and the kill request is handled before the loop has
        # seen the exit event: the executor must notice, not claim a kill.
        job_id = ex.run("alice", "true", ())
        pid = ex.get("alice", job_id).pid
        assert pid is not None
        deadline = time.monotonic() + 10
        while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.005)  # blocks the loop on purpose, so no event is handled
        assert ex.get("alice", job_id).status is JobStatus.RUNNING
        with pytest.raises(JobNotRunning, match="completed"):
            await ex.kill("alice", job_id)

    run(test)


def test_concurrent_kills_share_one_outcome() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "sleep", ("300",))
        first, second = await asyncio.gather(ex.kill("alice", job_id), ex.kill("alice", job_id))
        assert first.status is second.status is JobStatus.KILLED
        with pytest.raises(JobNotRunning):
            await ex.kill("alice", job_id)

    run(test)


def test_jobs_belong_to_their_owner() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run("alice", "sleep", ("300",))
        with pytest.raises(JobNotFound, match=f"job {job_id} not found"):
            ex.get("bob", job_id)
        with pytest.raises(JobNotFound):
            await ex.kill("bob", job_id)
        assert ex.get("alice", job_id).status is JobStatus.RUNNING

    run(test)


def test_shutdown_kills_every_running_job() -> None:
    pids: list[int] = []

    async def test(ex: Executor) -> None:
        for _ in range(5):
            job = ex.get("alice", ex.run("alice", "sleep", ("300",)))
            assert job.pid is not None
            pids.append(job.pid)
        await ex.shutdown()
        assert all(ex.get("alice", i).status is JobStatus.KILLED for i in range(1, 6))

    run(test)
    assert not any(alive(pid) for pid in pids)


def test_no_descriptor_leaks_after_jobs_end() -> None:
    async def test(ex: Executor) -> None:
        before = len(os.listdir("/proc/self/fd"))
        ids = [ex.run("alice", "echo", (str(i),)) for i in range(50)]
        ids.append(ex.run("alice", "no-such-command", ()))
        for job_id in ids:
            await finished(ex, job_id)
        await until(lambda: len(os.listdir("/proc/self/fd")) <= before)

    run(test)


def test_no_job_starts_once_shutdown_has_begun() -> None:
    async def test(ex: Executor) -> None:
        await ex.shutdown()
        with pytest.raises(ExecutorUnavailable, match="shutting down"):
            ex.run("alice", "true", ())

    run(test)


def test_output_stays_open_while_a_left_behind_process_writes() -> None:
    async def test(ex: Executor) -> None:
        job_id = ex.run(
            "alice", "sh", ("-c", "(read x < /dev/null; sleep 0.3; echo late) & echo early")
        )
        assert await finished(ex, job_id) is JobStatus.COMPLETED
        job = ex.get("alice", job_id)
        assert output(ex, job_id) == b"early\n"
        assert job.output_fd is not None  # the background shell still holds the pipe
        await until(lambda: job.output_fd is None)
        assert output(ex, job_id) == b"early\nlate\n"

    run(test)
