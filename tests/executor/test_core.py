"""The executor's job log with real processes, in this process's event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from tests.helpers import alive
from worker.config import ExecutorConfig
from worker.errors import (
    ExecutorUnavailable,
    IdempotencyConflict,
    JobNotFound,
    JobNotRunning,
    StdinUnavailable,
)
from worker.executor.core import Executor
from worker.executor.identity import Identities, Identity
from worker.executor.isolation import HostIsolation
from worker.executor.job import ENDED
from worker.executor.launcher import Spawner
from worker.protocol import JobStatus, RunJob

T = TypeVar("T")
GRACE = 0.5


def run(test: Callable[[Executor], Awaitable[T]], grace: float = GRACE) -> T:
    """``test`` against an executor of this process (single-tenant, no
    namespaces, no cgroups: the core's own logic, with real processes)."""

    async def main() -> T:
        home = Path(tempfile.mkdtemp(prefix="worker-core-"))
        identities = Identities(
            {user: Identity(None, None, home, "tester") for user in ("alice", "bob")},
            multi_user=False,
        )
        executor = Executor(
            ExecutorConfig(kill_grace=grace),
            spawner=Spawner.start(),
            identities=identities,
            host=HostIsolation(multi_user=False, namespaces=False, network_none=False),
        )
        try:
            return await test(executor)
        finally:
            await executor.shutdown()
            shutil.rmtree(home, ignore_errors=True)

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


async def start(ex: Executor, command: str, args: tuple[str, ...] = (), **options: Any) -> int:
    job_id, existing = await ex.run(RunJob(0, "alice", command, args, **options))
    assert not existing
    return job_id


def output(executor: Executor, job_id: int) -> bytes:
    job = executor.get("alice", job_id)
    return job.output.read(0, job.output.size)[1]


def test_completed_job_keeps_its_exact_output() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "printf", ("a\\0b\\377c",))
        assert await finished(ex, job_id) is JobStatus.COMPLETED
        assert output(ex, job_id) == b"a\x00b\xffc"
        snap = ex.get("alice", job_id).snapshot()
        assert snap.exit_code == 0 and snap.signal is None
        assert snap.started_at is not None and snap.ended_at is not None

    run(test)


def test_output_is_complete_when_status_turns_final() -> None:
    async def test(ex: Executor) -> None:
        # 1 MiB is far more than a pipe holds, so the drain at exit matters.
        ids = [await start(ex, "head", ("-c", "1048576", "/dev/zero")) for _ in range(5)]
        for job_id in ids:
            assert await finished(ex, job_id) is JobStatus.COMPLETED
            assert ex.get("alice", job_id).output.size == 1 << 20

    run(test)


def test_spawn_failure_is_failed_with_reason() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "definitely-not-a-command", ())
        job = ex.get("alice", job_id)
        assert job.status is JobStatus.FAILED
        assert (job.exit_code, job.pid) == (None, None)
        assert output(ex, job_id) == b"definitely-not-a-command: command not found\n"
        no_exec = await start(ex, "/", ())  # a directory: execve says EACCES
        assert output(ex, no_exec) == b"/: permission denied\n"

    run(test)


def test_ids_increase_and_jobs_run_concurrently() -> None:
    async def test(ex: Executor) -> None:
        started = time.monotonic()
        ids = [await start(ex, "sleep", ("1",)) for _ in range(10)]
        assert ids == list(range(1, 11))
        for job_id in ids:
            assert await finished(ex, job_id) is JobStatus.COMPLETED
        assert time.monotonic() - started < 8  # serially it would be 10 s

    run(test)


def test_stdin_reader_blocks_and_shows_output_so_far() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sh", ("-c", "echo before; read x; echo after"))
        await until(lambda: output(ex, job_id) == b"before\n")
        assert ex.get("alice", job_id).status is JobStatus.RUNNING
        # It was waiting on an open pipe, not at EOF: what it reads now is ours.
        ex.write_stdin("alice", job_id, b"x\n", close=False)
        assert await finished(ex, job_id) is JobStatus.COMPLETED
        assert output(ex, job_id) == b"before\nafter\n"

    run(test)


def test_kill_terminates_the_whole_tree() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sh", ("-c", "sleep 300 & sleep 300 & wait"))
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
        job_id = await start(ex, "sh", ("-c", "trap '' TERM; echo ready; sleep 300 & wait"))
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
        job_id = await start(ex, "true", ())
        await finished(ex, job_id)
        with pytest.raises(JobNotRunning, match=r"job \d+ is not running \(status: completed\)"):
            await ex.kill("alice", job_id)
        failed = await start(ex, "no-such-thing", ())
        with pytest.raises(JobNotRunning, match="status: failed"):
            await ex.kill("alice", failed)

    run(test)


def test_kill_just_after_exit_is_a_conflict_not_a_kill() -> None:
    async def test(ex: Executor) -> None:
        # The job exits, and the kill request is handled before the loop has
        # seen the exit event: the executor must notice, not claim a kill.
        job_id = await start(ex, "sh", ("-c", "read x"))
        job = ex.get("alice", job_id)
        assert job.pid is not None and job.stdin is not None
        job.stdin.write(b"\n", close=False)  # written at once: the pipe is empty
        deadline = time.monotonic() + 10
        while psutil.Process(job.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.005)  # blocks the loop on purpose, so no event is handled
        assert job.status is JobStatus.RUNNING
        with pytest.raises(JobNotRunning, match="completed"):
            await ex.kill("alice", job_id)

    run(test)


def test_concurrent_kills_share_one_outcome() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sleep", ("300",))
        first, second = await asyncio.gather(ex.kill("alice", job_id), ex.kill("alice", job_id))
        assert first.status is second.status is JobStatus.KILLED
        with pytest.raises(JobNotRunning):
            await ex.kill("alice", job_id)

    run(test)


def test_jobs_belong_to_their_owner() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sleep", ("300",))
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
            job = ex.get("alice", await start(ex, "sleep", ("300",)))
            assert job.pid is not None
            pids.append(job.pid)
        await ex.shutdown()
        assert all(ex.get("alice", i).status is JobStatus.KILLED for i in range(1, 6))

    run(test)
    assert not any(alive(pid) for pid in pids)


def test_no_descriptor_leaks_after_jobs_end() -> None:
    async def test(ex: Executor) -> None:
        before = len(os.listdir("/proc/self/fd"))
        ids = [await start(ex, "echo", (str(i),)) for i in range(50)]
        ids.append(await start(ex, "no-such-command", ()))
        for job_id in ids:
            await finished(ex, job_id)
        await until(lambda: len(os.listdir("/proc/self/fd")) <= before)

    run(test)


def test_no_job_starts_once_shutdown_has_begun() -> None:
    async def test(ex: Executor) -> None:
        await ex.shutdown()
        with pytest.raises(ExecutorUnavailable, match="shutting down"):
            await start(ex, "true", ())

    run(test)


def test_output_stays_open_while_a_left_behind_process_writes() -> None:
    # Here the executor is no subreaper (a test process), so the orphan goes
    # to init and is no job's any more; the real executor adopts and stops
    # it (tests/integration/test_lifecycle.py). Either way, EOF is exact.
    async def test(ex: Executor) -> None:
        job_id = await start(
            ex, "sh", ("-c", "(read x < /dev/null; sleep 0.3; echo late) & echo early")
        )
        assert await finished(ex, job_id) is JobStatus.COMPLETED
        job = ex.get("alice", job_id)
        assert output(ex, job_id) == b"early\n"
        assert job.output_fd is not None  # the background shell still holds the pipe
        await until(lambda: job.output_fd is None)
        assert output(ex, job_id) == b"early\nlate\n"

    run(test)


def test_timeout_kills_the_job_and_says_why() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sh", ("-c", "sleep 30 & wait"), timeout=0.3)
        assert await finished(ex, job_id) is JobStatus.KILLED
        snap = ex.get("alice", job_id).snapshot()
        assert snap.reason == "timeout"
        quick = await start(ex, "true", timeout=5)
        assert await finished(ex, quick) is JobStatus.COMPLETED
        assert ex.get("alice", quick).snapshot().reason is None
        killed = await start(ex, "sleep", ("30",))
        assert (await ex.kill("alice", killed)).reason == "kill"

    run(test)


def test_env_is_added_to_the_servers_and_the_job_knows_its_id() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(
            ex,
            "sh",
            ("-c", 'echo "$FOO|$WORKER_JOB_ID|${PATH:+path}"'),
            env=(("FOO", "two words"),),
        )
        await finished(ex, job_id)
        assert output(ex, job_id) == f"two words|{job_id}|path\n".encode()

    run(test)


def test_cwd_and_a_missing_cwd() -> None:
    async def test(ex: Executor) -> None:
        here = await start(ex, "pwd", cwd="/tmp")
        await finished(ex, here)
        assert output(ex, here) == b"/tmp\n"
        missing = await start(ex, "pwd", cwd="/no/such/dir")
        job = ex.get("alice", missing)
        assert job.status is JobStatus.FAILED and job.exit_code is None
        assert output(ex, missing).startswith(b"/no/such/dir: cannot change to this directory")

    run(test)


def test_stdin_write_then_eof() -> None:
    async def test(ex: Executor) -> None:
        prompt = await start(ex, "sh", ("-c", "echo name?; read x; echo hello $x; read y"))
        await until(lambda: output(ex, prompt) == b"name?\n")
        assert ex.write_stdin("alice", prompt, b"ann\n", close=False) == (4, False)
        await until(lambda: output(ex, prompt) == b"name?\nhello ann\n")
        assert ex.get("alice", prompt).status is JobStatus.RUNNING  # waits on its 2nd read
        ex.write_stdin("alice", prompt, b"", close=True)
        assert await finished(ex, prompt) is JobStatus.FAILED  # `read` at EOF fails
        cat = await start(ex, "cat")
        ex.write_stdin("alice", cat, b"\x00binary\xff", close=True)
        assert await finished(ex, cat) is JobStatus.COMPLETED
        assert output(ex, cat) == b"\x00binary\xff"
        with pytest.raises(JobNotRunning):
            ex.write_stdin("alice", cat, b"late", close=False)

    run(test)


def test_stdin_of_a_job_that_does_not_read_is_bounded() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sleep", ("30",))
        ex.write_stdin("alice", job_id, b"x" * (900 << 10), close=False)
        with pytest.raises(StdinUnavailable, match="not reading"):
            ex.write_stdin("alice", job_id, b"x" * (300 << 10), close=False)
        ex.write_stdin("alice", job_id, b"", close=True)
        with pytest.raises(StdinUnavailable, match="closed"):
            ex.write_stdin("alice", job_id, b"more", close=False)

    run(test)


def test_watch_waits_for_output_or_the_end() -> None:
    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sh", ("-c", "read x; echo one; read y"))
        watcher = asyncio.create_task(ex.watch("alice", job_id, 0, 1024))
        for _ in range(20):  # loop turns, not time: nothing can be written yet
            await asyncio.sleep(0)
        assert not watcher.done()
        ex.write_stdin("alice", job_id, b"go\n", close=False)
        await asyncio.wait_for(watcher, 5)
        assert output(ex, job_id) == b"one\n"
        ending = asyncio.create_task(ex.watch("alice", job_id, 4, 1024))
        ex.write_stdin("alice", job_id, b"", close=True)
        job = await asyncio.wait_for(ending, 5)
        assert job.status.is_final  # `read y` at EOF ends it

    run(test)


def test_jobs_lists_only_the_owners_newest_first() -> None:
    async def test(ex: Executor) -> None:
        first = await start(ex, "true")
        await ex.run(RunJob(0, "bob", "true", ()))
        second = await start(ex, "sleep", ("30",))
        await finished(ex, first)
        assert [j.id for j in ex.jobs("alice")[0]] == [second, first]
        assert [j.id for j in ex.jobs("alice", JobStatus.RUNNING)[0]] == [second]
        assert [j.id for j in ex.jobs("alice", JobStatus.COMPLETED)[0]] == [first]
        assert [j.owner for j in ex.jobs("bob")[0]] == ["bob"]

    run(test)


def test_a_watch_on_a_silent_job_is_answered_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("worker.protocol.WATCH_TIMEOUT", 0.2)

    async def test(ex: Executor) -> None:
        job_id = await start(ex, "sleep", ("30",))
        job = await asyncio.wait_for(ex.watch("alice", job_id, 0, 1024), 5)
        assert job.status is JobStatus.RUNNING and job.output.size == 0

    run(test)


def test_a_retry_with_the_same_idempotency_key_gets_the_same_job() -> None:
    async def test(ex: Executor) -> None:
        first, existing = await ex.run(RunJob(0, "alice", "true", (), idempotency_key="k1"))
        assert not existing
        again, existing = await ex.run(RunJob(1, "alice", "true", (), idempotency_key="k1"))
        assert (again, existing) == (first, True)
        # Another owner's key is another key; no key, a new job each time.
        bobs, existing = await ex.run(RunJob(2, "bob", "true", (), idempotency_key="k1"))
        assert bobs != first and not existing
        assert await start(ex, "true") != await start(ex, "true")
        with pytest.raises(IdempotencyConflict, match="different request"):
            await ex.run(RunJob(3, "alice", "false", (), idempotency_key="k1"))
        await finished(ex, first)

    run(test)


def test_a_finished_job_keeps_only_what_its_status_needs() -> None:
    """Once a job is final and all of it is gone, what only a running job
    needs (its leader, kill target, stdin, callbacks, own end event) is
    dropped; its status stays exact and a kill of it is still a conflict."""

    async def test(ex: Executor) -> None:
        ended = await start(ex, "sh", ("-c", "exit 3"))
        killed = await start(ex, "sleep", ("60",))
        never = await start(ex, "no-such-command", ())
        await ex.kill("alice", killed)
        for job_id in (ended, never):
            await finished(ex, job_id)
        jobs = [ex.get("alice", job_id) for job_id in (ended, killed, never)]

        def retired() -> bool:
            return all(job.leader is None and job.target is None for job in jobs)

        await until(retired)
        for job in jobs:
            assert job.stdin is None and job.kill_task is None and job.cleanup is None
            assert job.on_start is None and job.on_end is None
            assert job.ended is ENDED and job.ended.is_set()
        snap = jobs[0].snapshot()
        assert (snap.status, snap.exit_code, snap.signal) == (JobStatus.FAILED, 3, None)
        assert snap.pid is not None and snap.started_at is not None and snap.ended_at is not None
        snap = jobs[1].snapshot()
        assert (snap.status, snap.signal, snap.reason) == (JobStatus.KILLED, 15, "kill")
        assert jobs[2].snapshot().error is not None
        with pytest.raises(JobNotRunning, match="status: killed"):
            await ex.kill("alice", killed)
        waited = await ex.wait("alice", ended, 5)
        assert waited.status is JobStatus.FAILED

    run(test)
