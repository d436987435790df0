"""The job log and every operation on it. Runs inside the executor process.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Iterable

import psutil

from worker.buffer import OutputBuffer
from worker.config import ExecutorConfig
from worker.errors import ExecutorUnavailable, JobNotFound, JobNotRunning
from worker.executor.cgroups import CgroupTree
from worker.executor.exits import ChildReaper
from worker.executor.job import Job
from worker.executor.killer import KillTarget, alive, kill_all
from worker.executor.spawn import Spawned, SpawnError, spawn
from worker.executor.stdin import StdinPipe
from worker.executor.targets import (
    JOB_ID_VARIABLE,
    CgroupTarget,
    EverythingTarget,
    TreeTarget,
)
from worker.protocol import KILLABLE_STATES, JobSnapshot, JobStatus, RunJob

READ_SIZE = 64 << 10
# A job's main process may exit while a descendant still holds the output
# pipe open; the final status does not wait for that descendant.
DRAIN_LIMIT = 16 << 20
WATCH_TIMEOUT = 30.0


class Executor:
    def __init__(
        self,
        config: ExecutorConfig,
        adopt_orphans: bool = False,
        cgroups: CgroupTree | None = None,
    ) -> None:
        """``adopt_orphans``: this process is a child subreaper that owns all
        of its children, so it reaps them all and, at shutdown, kills them all.
        ``cgroups``: where each job gets a cgroup of its own."""
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._adopt_orphans = adopt_orphans
        self._reaper = ChildReaper(self._loop, adopt_orphans=adopt_orphans)
        self._cgroups = cgroups
        self._me = psutil.Process()
        self._closing = False

    # --- requests -------------------------------------------------------

    def run(self, request: RunJob) -> int:
        if self._closing:
            raise ExecutorUnavailable("the server is shutting down")
        job = Job(
            id=next(self._ids),
            owner=request.owner,
            command=request.command,
            args=request.args,
            output=OutputBuffer(self._config.max_output),
        )
        self._jobs[job.id] = job
        try:
            spawned = self._spawn(job, dict(request.env), request.cwd)
        except SpawnError as exc:
            job.fail_to_start(str(exc))
            return job.id
        self._adopt(job, spawned)
        if request.timeout is not None:
            job.timeout = self._loop.call_later(request.timeout, self._expire, job)
        return job.id

    def jobs(self, owner: str, status: JobStatus | None = None) -> list[JobSnapshot]:
        """The owner's jobs, newest first."""
        mine = [
            job.snapshot()
            for job in reversed(self._jobs.values())
            if job.owner == owner and (status is None or job.status is status)
        ]
        return mine

    async def watch(self, owner: str, job_id: int, offset: int, limit: int) -> Job:
        """Wait until the job has output past ``offset``, or has ended."""
        job = self.get(owner, job_id)
        # Answered within WATCH_TIMEOUT even with no news, so a watch whose
        # reader went away never lingers here for long.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WATCH_TIMEOUT):
                while job.output.size <= offset and job.status in KILLABLE_STATES:
                    await job.news()
        return job

    def write_stdin(self, owner: str, job_id: int, data: bytes, close: bool) -> int:
        job = self.get(owner, job_id)
        if job.status not in KILLABLE_STATES or job.stdin is None:
            raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
        return job.stdin.write(data, close)

    def get(self, owner: str, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        # Someone else's job is answered exactly like a missing one.
        if job is None or job.owner != owner:
            raise JobNotFound.for_job(job_id)
        return job

    async def kill(self, owner: str, job_id: int) -> JobSnapshot:
        job = self.get(owner, job_id)
        task = job.kill_task
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # No kill under way (or the last one failed): check and start one
            # within this loop step, so the job cannot end unseen in between.
            self._reap(job)  # it may have exited a moment ago
            if job.status not in KILLABLE_STATES:
                raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
            task = self._start_kill(job, "kill")
        elif task.done():
            raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
        await asyncio.shield(task)
        return job.snapshot()

    async def shutdown(self) -> None:
        """Refuse new jobs, kill every job's processes (TERM, grace, KILL),
        including those left behind by jobs that already ended."""
        self._closing = True
        tasks = [
            self._start_kill(job, "shutdown") if job.kill_task is None else job.kill_task
            for job in self._jobs.values()
            if job.status in KILLABLE_STATES
        ]
        await asyncio.gather(*tasks, return_exceptions=True)
        leftovers: KillTarget
        if self._adopt_orphans:
            kill_tree = self._cgroups.kill_everything if self._cgroups else None
            leftovers = EverythingTarget(self._me, kill_tree)
        else:
            leftovers = _Union([job.target for job in self._jobs.values() if job.target])
        await kill_all(leftovers, self._config.kill_grace)
        for job in self._jobs.values():
            self._close_output(job)
        if self._cgroups is not None:
            self._cgroups.remove()
        self._reaper.close()

    # --- processes ------------------------------------------------------

    def _spawn(self, job: Job, env: dict[str, str], cwd: str | None) -> Spawned:
        environment = {**os.environ, **env, JOB_ID_VARIABLE: str(job.id)}
        if self._cgroups is None:
            return spawn(job.command, job.args, environment, cwd)
        try:
            job.cgroup = self._cgroups.create(job.id)
            with self._cgroups.entered(job.cgroup):
                return spawn(job.command, job.args, environment, cwd)
        except OSError as exc:  # the cgroup itself could not be made or entered
            if job.cgroup is not None:
                job.cgroup.remove()
            raise SpawnError(f"{job.command}: cannot start: no cgroup: {exc.strerror}") from exc

    def _adopt(self, job: Job, spawned: Spawned) -> None:
        job.process = spawned.process
        job.started_at = time.time()
        job.stdin = StdinPipe(self._loop, spawned.stdin_fd)
        job.output_fd = spawned.output_fd
        if job.cgroup is not None:
            job.target = CgroupTarget(job.cgroup)
        else:
            # Unreaped, so the PID is still the leader's: safe to pin down.
            leader = psutil.Process(spawned.process.pid)
            job.target = TreeTarget(job.id, leader, self._me, lambda: self._group_of(job))
        self._loop.add_reader(spawned.output_fd, self._on_output, job)
        self._reaper.watch(spawned.process.pid, lambda: self._reap(job))

    def _on_output(self, job: Job) -> None:
        if job.output_fd is None:
            return
        try:
            data = os.read(job.output_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            job.append_output(data)
        else:
            self._close_output(job)

    def _close_output(self, job: Job) -> None:
        if job.output_fd is not None:
            self._loop.remove_reader(job.output_fd)
            os.close(job.output_fd)
            job.output_fd = None

    def _drain(self, job: Job) -> None:
        """Take what is already in the pipe, so a final job shows all its output."""
        taken = 0
        while job.output_fd is not None and taken < DRAIN_LIMIT:
            try:
                data = os.read(job.output_fd, READ_SIZE)
            except OSError:  # BlockingIOError included: the pipe is empty
                return
            if not data:
                self._close_output(job)
                return
            job.append_output(data)
            taken += len(data)

    def _reap(self, job: Job) -> None:
        process = job.process
        if process is None or process.returncode is not None:
            return
        returncode = process.poll()
        if returncode is None:
            return
        self._reaper.unwatch(process.pid)
        self._drain(job)
        job.finish(returncode)
        if job.cgroup is not None:
            job.cgroup.remove()  # if nothing of the job is left running

    def _group_of(self, job: Job) -> int | None:
        """The job's group ID while its leader is unreaped; after that the ID
        could be reused, so it is never signalled as a group again."""
        process = job.process
        if process is None or process.returncode is not None:
            return None
        return process.pid  # start_new_session: the leader's PID is the group ID

    def _expire(self, job: Job) -> None:
        job.timeout = None
        if job.status in KILLABLE_STATES and job.kill_task is None:
            self._start_kill(job, "timeout")

    def _start_kill(self, job: Job, reason: str) -> asyncio.Task[None]:
        """Mark the job killed-on-exit and send the first SIGTERM right now."""
        assert job.target is not None
        job.kill_reason = reason
        job.target.terminate()
        job.kill_task = asyncio.ensure_future(self._kill(job))
        return job.kill_task

    async def _kill(self, job: Job) -> None:
        assert job.target is not None
        await kill_all(job.target, self._config.kill_grace, already_terminated=True)
        self._reap(job)
        await job.ended.wait()
        if job.cgroup is not None:
            job.cgroup.remove()


class _Union:
    """Several kill targets as one."""

    def __init__(self, targets: Iterable[KillTarget]) -> None:
        self._targets = list(targets)

    def members(self) -> set[psutil.Process]:
        found: set[psutil.Process] = set()
        for target in self._targets:
            found.update(p for p in target.members() if alive(p))
        return found

    def terminate(self) -> None:
        for target in self._targets:
            target.terminate()

    def force(self) -> None:
        for target in self._targets:
            target.force()
