"""The executor's requests: run, status, output, stdin, kill, shutdown.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.
The job log is registry.py's; the processes are lifecycle.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import psutil

from worker import protocol
from worker.buffer import OutputBuffer
from worker.config import NETWORKS, ExecutorConfig
from worker.errors import (
    BadRequest,
    ExecutorUnavailable,
    JobNotRunning,
    KillFailed,
    QuotaExceeded,
)
from worker.executor.cgroups import CgroupTree
from worker.executor.controllers import Controllers
from worker.executor.identity import Identities
from worker.executor.isolation import HostIsolation
from worker.executor.job import Job, started_fields, started_line
from worker.executor.killer import KILL_SETTLE, KillTarget, kill_all
from worker.executor.launcher import Spawner
from worker.executor.lifecycle import LaunchFailed, Lifecycle
from worker.executor.limits import Policy, host_defaults, host_maxima, memory_of_host
from worker.executor.names import JobNames
from worker.executor.registry import JobRegistry
from worker.executor.stats import CountingBudget, ExecutorStats
from worker.executor.targets import DescendantsTarget, UnionTarget, deliver, signal_name
from worker.protocol import KILLABLE_STATES, JobSnapshot, JobStatus, Limits, RunJob, Stats

log = logging.getLogger("worker.executor")

RETENTION_CHECK = 60.0  # at most, seconds between looks for jobs past --keep-for


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
        controllers: Controllers | None = None,
    ) -> None:
        """``adopt_orphans``: this process is a child subreaper that owns all
        of its children, so it reaps them all and, at shutdown, kills them all.
        ``cgroups``: where each job gets a cgroup of its own; ``controllers``:
        where its limits are enforced."""
        self._config = config
        self._jobs = JobRegistry()
        self._adopt_orphans = adopt_orphans
        self._spawner = spawner
        self._host = host
        self._policy = policy_of(config)
        self._budget = budget_of(config)
        self._stats = ExecutorStats()
        self._life = Lifecycle(
            config,
            spawner=spawner,
            identities=identities,
            host=host,
            budget=self._budget,
            cgroups=cgroups,
            controllers=controllers,
            adopt_orphans=adopt_orphans,
        )
        # Looked for often enough that a job goes within half a --keep-for late.
        self._every = min(RETENTION_CHECK, max(0.5, config.keep_for / 2))
        self._retention = asyncio.get_running_loop().call_later(self._every, self._expire_old)
        self._launching: set[asyncio.Task[None]] = set()
        self._closing = False
        self._names = JobNames(self._jobs)
        # Told of the jobs forgotten (deleted, or past their retention) at
        # once, before any reply that follows, so the API drops what it kept.
        self.on_forgotten: Callable[[tuple[int, ...]], None] | None = None

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
        limits = self._policy.resolve(request.limits or Limits())
        self._check_quotas(request.owner)
        job = Job(
            id=self._jobs.next_id(),
            owner=request.owner,
            command=request.command,
            args=request.args,
            output=OutputBuffer(self._config.max_output),
        )
        job.on_start = _log_started
        job.on_end = self._ended
        job.name = request.name
        self._jobs.add(job, request)
        self._names.add(job)
        self._budget.started(job)
        self._stats.job_started(job.owner)
        # In a task of its own: a run request the API stops waiting for must
        # still leave the job either running or failed, never half started.
        launching = asyncio.ensure_future(self._launch(job, request, limits))
        self._launching.add(launching)
        launching.add_done_callback(self._launching.discard)
        await asyncio.shield(launching)
        return job.id, False

    async def _launch(self, job: Job, request: RunJob, limits: Limits) -> None:
        try:
            await self._life.launch(job, request, limits)
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

    def _check_quotas(self, owner: str) -> None:
        running, most = self._jobs.running(owner), self._config.max_running_per_user
        if running >= most:
            raise QuotaExceeded(
                f"{owner} has {running} job{'' if running == 1 else 's'} running, the most this "
                "server allows "
                f"(--max-running-per-user {most}); wait for one to end"
            )
        used, quota = self._budget.used_by(owner), self._budget.per_user
        if quota is not None and used >= quota:
            raise QuotaExceeded(
                f"{owner}'s jobs keep {used >> 20} MiB of output, the most this server allows "
                f"(--max-output-per-user {quota >> 20} MiB); remove some (worker rm, worker prune)"
            )

    def _ended(self, job: Job) -> None:
        """Every job comes here once, when its status turns final."""
        self._jobs.ended(job, time.monotonic())  # kept as its ended_when
        self._budget.finished(job)
        self._stats.job_ended(job)
        forgotten = []
        while self._jobs.finished_count(job.owner) > self._config.keep_finished:
            oldest = self._jobs.oldest_finished(job.owner)
            if oldest is None:
                break
            forgotten.append(self._delete(oldest))
        self._tell_forgotten(forgotten)

    def _expire_old(self) -> None:
        expired = self._jobs.ended_before(time.monotonic() - self._config.keep_for)
        self._tell_forgotten([self._delete(job) for job in expired])
        loop = asyncio.get_running_loop()
        self._retention = loop.call_later(self._every, self._expire_old)

    def _delete(self, job: Job) -> int:
        self._stats.job_deleted(job)
        self._life.close(job)
        self._budget.forget(job)
        self._jobs.delete(job)
        return job.id

    def _tell_forgotten(self, job_ids: list[int]) -> None:
        if job_ids and self.on_forgotten is not None:
            self.on_forgotten(tuple(job_ids))

    def delete(self, owner: str, job_ids: tuple[int, ...] | None) -> tuple[int, ...]:
        """Forget finished jobs (``None``: every finished job of the owner);
        a running one is a conflict, an unknown one not found."""
        if job_ids is None:
            jobs = self._jobs.finished_of(owner)
        else:
            jobs = [self.get(owner, job_id) for job_id in job_ids]
            for job in jobs:
                if not job.status.is_final:
                    raise JobNotRunning(f"job {job.id} is running: kill it first")
        deleted = [self._delete(job) for job in jobs]
        self._tell_forgotten(deleted)
        return tuple(deleted)

    def stats(self, request_id: int) -> Stats:
        """The counters, for the API's /metrics."""
        return self._stats.reply(request_id, self._jobs, self._budget)

    def get(self, owner: str, job_id: int) -> Job:
        return self._jobs.get(owner, job_id)

    def find(self, owner: str, name: str) -> Job:
        """The owner's newest job of this name."""
        return self._names.newest(owner, name)

    async def wait(self, owner: str, job_id: int, timeout: float) -> Job:
        """The job once it has ended, or after ``timeout`` seconds if it has not."""
        job = self.get(owner, job_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await job.ended.wait()
        return job

    def jobs(
        self,
        owner: str,
        status: JobStatus | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> tuple[list[JobSnapshot], int | None]:
        """A page of the owner's jobs, newest first, and where the next starts."""
        found, next_before = self._jobs.page(owner, status, limit, before)
        return [job.snapshot(usage=False) for job in found], next_before

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

    async def kill(self, owner: str, job_id: int, force: bool = False) -> JobSnapshot:
        """SIGTERM, the grace period, SIGKILL; with ``force``, SIGKILL at once
        (also to a job whose kill is already under way)."""
        job = await self._started(owner, job_id)
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
        if force and job.target is not None and not job.ended.is_set():
            log.info("job %d of %s: SIGKILL now (kill --force)", job.id, job.owner)
            job.target.force()
        await asyncio.shield(task)
        return job.snapshot()

    async def send_signal(self, owner: str, job_id: int, sig: int) -> JobSnapshot:
        """``sig``, once, to every process of the job; no TERM-then-KILL."""
        job = await self._started(owner, job_id)
        self._life.reap(job)  # it may have exited a moment ago
        if job.status not in KILLABLE_STATES or job.target is None:
            raise _not_running(job)
        job.signals_sent |= {sig}
        self._stats.kill_started("signal")
        log.info(
            "job %d of %s: %s sent (kill -s)",
            job.id,
            job.owner,
            signal_name(sig),
            extra={"event": "job_signalled", "job": job.id, "user": job.owner, "signal": sig},
        )
        await deliver(job.target, sig)
        return job.snapshot()

    async def _started(self, owner: str, job_id: int) -> Job:
        """The job, once it is past its launch (started, or failed to)."""
        job = self.get(owner, job_id)
        while job.target is None and job.status in KILLABLE_STATES:
            await job.news()  # still being launched: it starts, or fails to
        return job

    async def shutdown(self) -> None:
        """Refuse new jobs; SIGTERM every process of every job at once, wait
        the grace period, SIGKILL what is left; then wait for the reaping."""
        self._closing = self._life.closing = True
        self._retention.cancel()
        if self._launching:
            await asyncio.wait(set(self._launching))
        self._spawner.close()
        running = [job for job in self._jobs if job.status in KILLABLE_STATES]
        log.info("shutting down: stopping %d running jobs", len(running))
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
        if self._life.controllers is not None:
            self._life.controllers.remove()
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
        self._stats.kill_started(reason)
        job.kill_task = asyncio.ensure_future(self._kill(job))
        log.info(
            "job %d of %s: stopping it (%s): SIGTERM, SIGKILL after %g s",
            job.id,
            job.owner,
            reason,
            self._config.kill_grace,
            extra={"event": "job_kill", "job": job.id, "user": job.owner, "reason": reason},
        )
        return job.kill_task

    async def _kill(self, job: Job) -> None:
        await self._life.kill(job)
        if not job.ended.is_set():
            raise KillFailed(f"could not confirm that every process of job {job.id} is gone")


def policy_of(config: ExecutorConfig) -> Policy:
    """The limits jobs get, and may ask for, on this host."""
    return Policy(config.limit_defaults or host_defaults(), config.limit_maxima or host_maxima())


def budget_of(config: ExecutorConfig) -> CountingBudget:
    total = config.max_output_total or memory_of_host() // 10
    return CountingBudget(total, config.max_output_per_user or total // 4)


def _not_running(job: Job) -> JobNotRunning:
    return JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")


def _log_started(job: Job) -> None:
    log.info("%s", started_line(job), extra=started_fields(job))
