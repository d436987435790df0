"""The executor's requests: run, status, output, stdin, kill, shutdown.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.
The job log is registry.py's; the processes are lifecycle.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psutil

from worker import protocol
from worker.buffer import OutputBuffer
from worker.config import NETWORKS, ExecutorConfig
from worker.errors import BadRequest, ExecutorUnavailable, JobNotRunning, KillFailed
from worker.executor.cgroups import CgroupTree
from worker.executor.identity import Identities
from worker.executor.isolation import HostIsolation
from worker.executor.job import Job
from worker.executor.killer import KILL_SETTLE, KillTarget, kill_all
from worker.executor.launcher import Spawner
from worker.executor.lifecycle import LaunchFailed, Lifecycle
from worker.executor.registry import JobRegistry
from worker.executor.targets import DescendantsTarget, UnionTarget
from worker.protocol import KILLABLE_STATES, JobSnapshot, JobStatus, RunJob

log = logging.getLogger("worker.executor")


class Executor:
    def __init__(
        self,
        config: ExecutorConfig,
        *,
        spawner: Spawner,
        identities: Identities,
        host: HostIsolation,
        adopt_orphans: bool = False,
        cgroups: CgroupTree | None = None,
    ) -> None:
        """``adopt_orphans``: this process is a child subreaper that owns all
        of its children, so it reaps them all and, at shutdown, kills them all.
        ``cgroups``: where each job gets a cgroup of its own."""
        self._config = config
        self._jobs = JobRegistry()
        self._adopt_orphans = adopt_orphans
        self._spawner = spawner
        self._host = host
        self._life = Lifecycle(
            config,
            spawner=spawner,
            identities=identities,
            host=host,
            cgroups=cgroups,
            adopt_orphans=adopt_orphans,
        )
        self._launching: set[asyncio.Task[None]] = set()
        self._closing = False

    # --- requests -------------------------------------------------------

    async def run(self, request: RunJob) -> tuple[int, bool]:
        """The new job's ID, and whether it existed already (made by an
        earlier request with the same idempotency key)."""
        if self._closing:
            raise ExecutorUnavailable("the server is shutting down")
        self._check_network(request.network)
        earlier = self._jobs.made_by(request)
        if earlier is not None:
            return earlier, True
        job = Job(
            id=self._jobs.next_id(),
            owner=request.owner,
            command=request.command,
            args=request.args,
            output=OutputBuffer(self._config.max_output),
        )
        self._jobs.add(job, request)
        # In a task of its own: a run request the API stops waiting for must
        # still leave the job either running or failed, never half started.
        launching = asyncio.ensure_future(self._launch(job, request))
        self._launching.add(launching)
        launching.add_done_callback(self._launching.discard)
        await asyncio.shield(launching)
        return job.id, False

    async def _launch(self, job: Job, request: RunJob) -> None:
        try:
            await self._life.launch(job, request)
        except LaunchFailed as exc:
            job.fail_to_start(str(exc))
            return
        except Exception as exc:  # the spawner is gone, say: the job did not start
            log.exception("job %d could not be launched", job.id)
            job.fail_to_start(f"{job.command}: cannot start: {exc}")
            return
        if job.status is JobStatus.RUNNING and request.timeout is not None:
            loop = asyncio.get_running_loop()
            job.timeout = loop.call_later(request.timeout, self._expire, job)

    def _check_network(self, network: str | None) -> None:
        if network is None:
            return
        if network not in NETWORKS:
            raise BadRequest(f"'network' must be one of {', '.join(NETWORKS)}, not {network!r}")
        if network == "none" and not self._host.network_none:
            raise BadRequest('"network": "none" is not available on this server (see its log)')

    def get(self, owner: str, job_id: int) -> Job:
        return self._jobs.get(owner, job_id)

    def jobs(
        self,
        owner: str,
        status: JobStatus | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> tuple[list[JobSnapshot], int | None]:
        """A page of the owner's jobs, newest first, and where the next starts."""
        found, next_before = self._jobs.page(owner, status, limit, before)
        return [job.snapshot() for job in found], next_before

    async def watch(self, owner: str, job_id: int, offset: int, limit: int) -> Job:
        """Wait until the job has output past ``offset``, or has ended."""
        job = self.get(owner, job_id)
        # Answered within WATCH_TIMEOUT even with no news, so a watch whose
        # reader went away never lingers here for long.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(protocol.WATCH_TIMEOUT):
                while job.output.size <= offset and job.status in KILLABLE_STATES:
                    await job.news()
        return job

    def write_stdin(self, owner: str, job_id: int, data: bytes, close: bool) -> tuple[int, bool]:
        """Bytes accepted, and whether stdin is closed now."""
        job = self.get(owner, job_id)
        if job.status not in KILLABLE_STATES or job.stdin is None:
            raise _not_running(job)
        accepted = job.stdin.write(data, close)
        return accepted, not job.stdin.open

    async def kill(self, owner: str, job_id: int) -> JobSnapshot:
        job = self.get(owner, job_id)
        while job.target is None and job.status in KILLABLE_STATES:
            await job.news()  # still being launched: it starts, or fails to
        task = job.kill_task
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # No kill under way (or the last one failed): check and start one
            # within this loop step, so the job cannot end unseen in between.
            self._life.reap(job)  # it may have exited a moment ago
            if job.status not in KILLABLE_STATES:
                raise _not_running(job)
            task = self._start_kill(job, "kill")
        elif task.done():
            raise _not_running(job)
        await asyncio.shield(task)
        return job.snapshot()

    async def shutdown(self) -> None:
        """Refuse new jobs; SIGTERM every process of every job at once, wait
        the grace period, SIGKILL what is left; then wait for the reaping."""
        self._closing = self._life.closing = True
        if self._launching:
            await asyncio.wait(set(self._launching))
        self._spawner.close()
        running = [job for job in self._jobs if job.status in KILLABLE_STATES]
        for job in running:
            job.kill_reason = job.kill_reason or "shutdown"
        everything: KillTarget
        if self._adopt_orphans:
            trees = [self._life.cgroups] if self._life.cgroups else []
            everything = DescendantsTarget(psutil.Process(), trees=trees)
        else:
            everything = UnionTarget(job.target for job in self._jobs if job.target)
        await kill_all(everything, self._config.kill_grace)
        for job in running:
            self._life.reap(job)
        pending = [asyncio.ensure_future(job.ended.wait()) for job in running]
        if pending:
            await asyncio.wait(pending, timeout=KILL_SETTLE)
            for waiter in pending:
                waiter.cancel()
        busy = [job.kill_task for job in running if job.kill_task]
        await asyncio.gather(*busy, return_exceptions=True)
        await self._life.settle()
        for job in self._jobs:
            self._life.close(job)
        if self._life.cgroups is not None:
            self._life.cgroups.remove()
        self._life.stop()

    # --- kills ------------------------------------------------------------

    def _expire(self, job: Job) -> None:
        job.timeout = None
        if job.status in KILLABLE_STATES and job.kill_task is None:
            self._start_kill(job, "timeout")

    def _start_kill(self, job: Job, reason: str) -> asyncio.Task[None]:
        """Mark the job killed-on-exit (now, in this loop step, so that its
        end cannot be seen as a plain exit) and start killing it."""
        job.kill_reason = reason
        job.kill_task = asyncio.ensure_future(self._kill(job))
        return job.kill_task

    async def _kill(self, job: Job) -> None:
        await self._life.kill(job)
        if not job.ended.is_set():
            raise KillFailed(f"could not confirm that every process of job {job.id} is gone")


def _not_running(job: Job) -> JobNotRunning:
    return JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
