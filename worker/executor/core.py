"""The job log and every operation on it. Runs inside the executor process.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import psutil

from worker.config import ExecutorConfig
from worker.errors import JobNotFound, JobNotRunning
from worker.executor.exits import ExitWatcher
from worker.executor.job import Job
from worker.executor.killer import kill_tree
from worker.executor.spawn import Spawned, SpawnError, spawn
from worker.protocol import KILLABLE_STATES, JobSnapshot

READ_SIZE = 64 << 10
# A job's main process may exit while a descendant still holds the output
# pipe open; the final status does not wait for that descendant.
DRAIN_LIMIT = 16 << 20


class Executor:
    def __init__(self, config: ExecutorConfig) -> None:
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._exits = ExitWatcher(self._loop)

    # --- requests -------------------------------------------------------

    def run(self, owner: str, command: str, args: tuple[str, ...]) -> int:
        job = Job(id=next(self._ids), owner=owner, command=command, args=args)
        self._jobs[job.id] = job
        try:
            spawned = spawn(command, args)
        except SpawnError as exc:
            job.fail_to_start(str(exc))
            return job.id
        self._adopt(job, spawned)
        return job.id

    def get(self, owner: str, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        # Someone else's job is answered exactly like a missing one.
        if job is None or job.owner != owner:
            raise JobNotFound.for_job(job_id)
        return job

    async def kill(self, owner: str, job_id: int) -> JobSnapshot:
        job = self.get(owner, job_id)
        self._reap(job)  # it may have exited a moment ago, unnoticed yet
        if job.status not in KILLABLE_STATES:
            raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
        # A kill already under way is joined, not repeated.
        if job.kill_task is None:
            job.kill_requested = True
            job.kill_task = asyncio.ensure_future(self._kill(job))
        await asyncio.shield(job.kill_task)
        return job.snapshot()

    async def shutdown(self) -> None:
        """Kill every running job (TERM, grace, KILL) and wait until all are gone."""
        running = [job for job in self._jobs.values() if job.status in KILLABLE_STATES]
        for job in running:
            if job.kill_task is None:
                job.kill_requested = True
                job.kill_task = asyncio.ensure_future(self._kill(job))
        await asyncio.gather(
            *(job.kill_task for job in running if job.kill_task), return_exceptions=True
        )
        self._exits.close()

    # --- processes ------------------------------------------------------

    def _adopt(self, job: Job, spawned: Spawned) -> None:
        job.process = spawned.process
        job.started_at = time.time()
        job.stdin_fd = spawned.stdin_fd
        job.output_fd = spawned.output_fd
        self._loop.add_reader(spawned.output_fd, self._on_output, job)
        self._exits.watch(spawned.process.pid, lambda: self._reap(job))

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
            job.output.append(data)
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
            job.output.append(data)
            taken += len(data)

    def _reap(self, job: Job) -> None:
        process = job.process
        if process is None or job.status not in KILLABLE_STATES:
            return
        returncode = process.poll()
        if returncode is None:
            return
        self._exits.unwatch(process.pid)
        self._drain(job)
        if job.stdin_fd is not None:
            os.close(job.stdin_fd)
            job.stdin_fd = None
        job.finish(returncode)

    def _group_of(self, job: Job) -> int | None:
        process = job.process
        if process is None or process.returncode is not None:
            return None
        return process.pid  # start_new_session: the leader's PID is the group ID

    async def _kill(self, job: Job) -> None:
        assert job.process is not None
        try:
            root = psutil.Process(job.process.pid)
        except psutil.NoSuchProcess:
            root = None
        if root is not None:
            await kill_tree(root, self._config.kill_grace, lambda: self._group_of(job))
        # The leader is gone; its exit is reaped by the watcher, or here.
        self._reap(job)
        await job.ended.wait()
