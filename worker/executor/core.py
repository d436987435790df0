"""The job log and every operation on it. Runs inside the executor process.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time

import psutil

from worker.config import ExecutorConfig
from worker.errors import ExecutorUnavailable, JobNotFound, JobNotRunning
from worker.executor.exits import ChildReaper
from worker.executor.job import Job
from worker.executor.killer import alive, kill_all, signal_all
from worker.executor.spawn import Spawned, SpawnError, spawn
from worker.protocol import KILLABLE_STATES, JobSnapshot

READ_SIZE = 64 << 10
# A job's main process may exit while a descendant still holds the output
# pipe open; the final status does not wait for that descendant.
DRAIN_LIMIT = 16 << 20


class Executor:
    def __init__(self, config: ExecutorConfig, adopt_orphans: bool = False) -> None:
        """``adopt_orphans``: this process is a child subreaper and owns every
        child it has, so it reaps them all."""
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._reaper = ChildReaper(self._loop, adopt_orphans=adopt_orphans)
        self._me = psutil.Process()
        self._sessions: set[int] = set()  # every job's session ID, ever
        self._closing = False

    # --- requests -------------------------------------------------------

    def run(self, owner: str, command: str, args: tuple[str, ...]) -> int:
        if self._closing:
            raise ExecutorUnavailable("the server is shutting down")
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
        task = job.kill_task
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # No kill under way (or the last one failed): check and start one
            # within this loop step, so the job cannot end unseen in between.
            self._reap(job)  # it may have exited a moment ago
            if job.status not in KILLABLE_STATES:
                raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
            task = self._start_kill(job)
        elif task.done():
            raise JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
        await asyncio.shield(task)
        return job.snapshot()

    async def shutdown(self) -> None:
        """Refuse new jobs, kill every job's processes (TERM, grace, KILL),
        including those left behind by jobs that already ended."""
        self._closing = True
        tasks = [
            self._start_kill(job) if job.kill_task is None else job.kill_task
            for job in self._jobs.values()
            if job.status in KILLABLE_STATES
        ]
        await asyncio.gather(*tasks, return_exceptions=True)
        await kill_all(self._leftovers, self._config.kill_grace)
        self._reaper.close()

    # --- processes ------------------------------------------------------

    def _adopt(self, job: Job, spawned: Spawned) -> None:
        job.process = spawned.process
        job.started_at = time.time()
        job.stdin_fd = spawned.stdin_fd
        job.output_fd = spawned.output_fd
        # start_new_session: the leader's PID is also its session and group ID.
        self._sessions.add(spawned.process.pid)
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
        if process is None or process.returncode is not None:
            return
        returncode = process.poll()
        if returncode is None:
            return
        self._reaper.unwatch(process.pid)
        self._drain(job)
        if job.stdin_fd is not None:
            os.close(job.stdin_fd)
            job.stdin_fd = None
        job.finish(returncode)

    def _group_of(self, job: Job) -> int | None:
        """The job's group ID while its leader is unreaped; after that the ID
        could be reused, so it is never signalled as a group again."""
        process = job.process
        if process is None or process.returncode is not None:
            return None
        return process.pid

    def _members(self, job: Job) -> set[psutil.Process]:
        """The job's processes: the leader's descendants, and every process
        still in the job's session (orphans this executor adopted included)."""
        found: set[psutil.Process] = set()
        with contextlib.suppress(psutil.Error, OSError):
            if job.leader is not None and alive(job.leader):
                found.add(job.leader)
                found.update(job.leader.children(recursive=True))
        session = job.pid
        for process in self._descendants():
            with contextlib.suppress(OSError):
                if os.getsid(process.pid) == session:
                    found.add(process)
        return found

    def _leftovers(self) -> set[psutil.Process]:
        """Processes of any job, ended or not, that are still about."""
        found = set()
        for process in self._descendants():
            with contextlib.suppress(OSError):
                if os.getsid(process.pid) in self._sessions:
                    found.add(process)
        return found

    def _descendants(self) -> list[psutil.Process]:
        try:
            return self._me.children(recursive=True)
        except (psutil.Error, OSError):
            return []

    def _start_kill(self, job: Job) -> asyncio.Task[None]:
        """Mark the job killed-on-exit and send the first SIGTERM right now."""
        assert job.process is not None
        job.kill_requested = True
        # Unreaped, so this PID is still the job's leader.
        job.leader = psutil.Process(job.process.pid)
        signal_all(self._members(job), signal.SIGTERM, self._group_of(job))
        job.kill_task = asyncio.ensure_future(self._kill(job))
        return job.kill_task

    async def _kill(self, job: Job) -> None:
        await kill_all(
            lambda: self._members(job),
            self._config.kill_grace,
            group=lambda: self._group_of(job),
            already_terminated=True,
        )
        self._reap(job)
        await job.ended.wait()
