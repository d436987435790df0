"""The job log and every operation on it. Runs inside the executor process.

All state lives on one asyncio loop: job exits, output and requests are
handled one at a time, so a status is never half-updated when it is read.

A job's life is its main process's: when that ends, the job's status is
final, and whatever the job left running is stopped (SIGTERM, the grace
period, SIGKILL), as a container's processes end with its init. So a kill, a
timeout or a plain exit never leaves a process of the job behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import psutil

from worker import protocol
from worker.buffer import OutputBuffer
from worker.config import ExecutorConfig
from worker.errors import ExecutorUnavailable, JobNotRunning, KillFailed
from worker.executor.cgroups import CgroupTree, JobCgroup
from worker.executor.exits import ChildReaper
from worker.executor.job import Job, now_iso
from worker.executor.killer import KILL_SETTLE, KillTarget, MembersUnknown, alive, kill_all
from worker.executor.pump import OutputPump
from worker.executor.registry import JobRegistry
from worker.executor.spawn import Spawned, SpawnError, spawn
from worker.executor.stdin import StdinPipe
from worker.executor.targets import (
    JOB_ID_VARIABLE,
    CgroupTarget,
    DescendantsTarget,
    TreeTarget,
    UnionTarget,
    children,
    process_of,
)
from worker.linux import direct_children, exited
from worker.protocol import KILLABLE_STATES, JobSnapshot, JobStatus, RunJob

log = logging.getLogger("worker.executor")

_JOB_ID_KEY = JOB_ID_VARIABLE.encode()


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
        self._jobs = JobRegistry()
        self._adopt_orphans = adopt_orphans
        self._reaper = ChildReaper(self._loop, adopt_orphans=adopt_orphans)
        self._pump = OutputPump(self._loop)
        self._cgroups = cgroups
        self._me = psutil.Process()
        self._leaders: set[int] = set()  # PIDs of unreaped job leaders
        self._cleanups: set[asyncio.Task[None]] = set()
        self._closing = False
        self._environ = dict(os.environb)  # the server's, read once

    # --- requests -------------------------------------------------------

    def run(self, request: RunJob) -> tuple[int, bool]:
        """The new job's ID, and whether it existed already (made by an
        earlier request with the same idempotency key)."""
        if self._closing:
            raise ExecutorUnavailable("the server is shutting down")
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
        try:
            spawned = self._spawn(job, dict(request.env), request.cwd)
        except SpawnError as exc:
            job.fail_to_start(str(exc))
            return job.id, False
        self._adopt(job, spawned)
        if request.timeout is not None:
            job.timeout = self._loop.call_later(request.timeout, self._expire, job)
        return job.id, False

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
        task = job.kill_task
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # No kill under way (or the last one failed): check and start one
            # within this loop step, so the job cannot end unseen in between.
            self._reap(job)  # it may have exited a moment ago
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
        self._closing = True
        running = [job for job in self._jobs if job.status in KILLABLE_STATES]
        for job in running:
            job.kill_reason = job.kill_reason or "shutdown"
        everything: KillTarget
        if self._adopt_orphans:
            everything = DescendantsTarget(self._me, trees=[self._cgroups] if self._cgroups else [])
        else:
            everything = UnionTarget(job.target for job in self._jobs if job.target)
        await kill_all(everything, self._config.kill_grace)
        for job in running:
            self._reap(job)
        pending = [asyncio.ensure_future(job.ended.wait()) for job in running]
        if pending:
            await asyncio.wait(pending, timeout=KILL_SETTLE)
            for waiter in pending:
                waiter.cancel()
        busy = [job.kill_task for job in running if job.kill_task] + list(self._cleanups)
        await asyncio.gather(*busy, return_exceptions=True)
        for job in self._jobs:
            self._pump.close(job)
        if self._cgroups is not None:
            self._cgroups.remove()
        self._reaper.close()

    # --- processes ------------------------------------------------------

    def _spawn(self, job: Job, env: dict[str, str], cwd: str | None) -> Spawned:
        # Bytes, so that Popen need not encode the whole environment again.
        environment = dict(self._environ)
        for name, value in env.items():
            environment[os.fsencode(name)] = os.fsencode(value)
        environment[_JOB_ID_KEY] = str(job.id).encode()
        if self._cgroups is None:
            return spawn(job.command, job.args, environment, cwd)
        try:
            job.cgroup = self._job_cgroup(job.id)
            self._cgroups.enter(job.cgroup)
        except OSError as exc:  # the cgroup itself could not be made or entered
            self._drop_cgroup(job)
            raise SpawnError(f"{job.command}: cannot start: no cgroup: {exc.strerror}") from exc
        try:
            return spawn(job.command, job.args, environment, cwd)
        except SpawnError:
            self._drop_cgroup(job)
            raise
        finally:
            self._cgroups.leave()

    def _job_cgroup(self, job_id: int) -> JobCgroup:
        assert self._cgroups is not None
        try:
            return self._cgroups.create(job_id)
        except FileNotFoundError:
            pass
        # Our tree is gone: removed by hand or by something that did not
        # check its lock. Its jobs had ended (a cgroup with processes cannot
        # be removed); make a new one rather than fail every job from now on.
        vanished = self._cgroups.base
        self._cgroups.recreate()
        log.error(
            "this server's cgroup %s vanished (removed from outside); new jobs go to %s",
            vanished,
            self._cgroups.base,
        )
        return self._cgroups.create(job_id)

    def _drop_cgroup(self, job: Job) -> None:
        if job.cgroup is not None:
            job.cgroup.remove()
            job.cgroup = None

    def _adopt(self, job: Job, spawned: Spawned) -> None:
        job.process = spawned.process
        job.started_at = now_iso()
        job.stdin = StdinPipe(self._loop, spawned.stdin_fd)
        self._leaders.add(spawned.process.pid)
        group = lambda: self._group_of(job)  # noqa: E731 - bound to this job
        if job.cgroup is not None:
            job.target = CgroupTarget(job.cgroup, group)
        else:
            # Unreaped, so the PID is still the leader's: safe to pin down.
            leader = psutil.Process(spawned.process.pid)
            job.target = TreeTarget(job.id, leader, self._adopted, group)
        self._pump.start(job, spawned.output_fd)
        self._reaper.watch(spawned.process.pid, lambda: self._reap(job))

    def _adopted(self) -> list[psutil.Process]:
        """Processes this executor adopted (orphans of jobs), with their
        descendants: its children that are not job leaders."""
        pids = direct_children()
        if pids is None:
            adopted = [p for p in children(self._me) if p.pid not in self._leaders]
        else:
            adopted = [p for pid in pids if pid not in self._leaders if (p := process_of(pid))]
        found = list(adopted)
        for process in adopted:
            found.extend(children(process, recursive=True))
        return found

    def _reap(self, job: Job) -> None:
        process = job.process
        if process is None or process.returncode is not None:
            return
        if not exited(process.pid):
            return
        # The leader is a zombie now, so the job's group and session IDs are
        # still its own: the last moment to see who else is in the job.
        leftovers = self._has_leftovers(job)
        returncode = process.wait()
        self._leaders.discard(process.pid)
        self._reaper.unwatch(process.pid)
        self._pump.drain(job)
        job.finish(returncode)
        if leftovers and job.kill_task is None and not self._closing:
            task = asyncio.ensure_future(self._stop_leftovers(job))
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)
        elif not leftovers and job.kill_task is None:
            self._drop_cgroup(job)

    def _has_leftovers(self, job: Job) -> bool:
        if job.target is None:
            return False
        try:
            return any(alive(p) for p in job.target.members())
        except MembersUnknown:
            return True

    async def _stop_leftovers(self, job: Job) -> None:
        assert job.target is not None
        await kill_all(job.target, self._config.kill_grace)
        self._drop_cgroup(job)

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
        """Mark the job killed-on-exit (now, in this loop step, so that its
        end cannot be seen as a plain exit) and start killing it."""
        job.kill_reason = reason
        job.kill_task = asyncio.ensure_future(self._kill(job))
        return job.kill_task

    async def _kill(self, job: Job) -> None:
        assert job.target is not None
        gone = await kill_all(job.target, self._config.kill_grace)
        self._reap(job)
        if not gone or not job.ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.ended.wait(), KILL_SETTLE)
        if not job.ended.is_set():
            raise KillFailed(f"could not confirm that every process of job {job.id} is gone")
        self._drop_cgroup(job)


def _not_running(job: Job) -> JobNotRunning:
    return JobNotRunning(f"job {job.id} is not running (status: {job.status.value})")
