"""One job as the executor sees it: its process, its output, its state."""

from __future__ import annotations

import asyncio
import datetime
import logging
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from worker import states
from worker.buffer import OutputBuffer
from worker.executor.cgroups import JobCgroup
from worker.executor.controllers import JobControllers
from worker.executor.killer import KillTarget
from worker.executor.stdin import StdinPipe
from worker.protocol import Isolation, JobSnapshot, JobStatus, Limits, Usage

log = logging.getLogger("worker.executor")


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ...T06:12:08.123Z."""
    moment = datetime.datetime.now(datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(eq=False, slots=True)
class Leader:
    """Our child for a job: its main process, or the init of its PID
    namespace (which reports the main process's end on the report pipe)."""

    pid: int
    pidfd: int  # held until reaped: signals through it can never hit a reused PID
    init: bool
    returncode: int | None = None  # our child's, once reaped
    leftovers: bool = False  # whether anything of the job was left when it was reaped
    gone: bool = False  # every process of the job is gone (its cgroups too)


class Ended:
    """Whether a job has ended, and a way to wait for it: asyncio.Event's
    interface in a few bytes (every job keeps one for as long as it is kept)."""

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._set = False
        self._future: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        self._future = None

    async def wait(self) -> None:
        if self._set:
            return
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._future)


# Shared: an empty frozenset() is a new object each time on some Pythons.
NO_SIGNALS: frozenset[int] = frozenset()
# What every retired job has in place of its own ``Ended``.
ENDED = Ended()
ENDED.set()


@dataclass(eq=False, slots=True)
class Job:
    id: int
    owner: str
    command: str
    args: tuple[str, ...]
    output: OutputBuffer
    status: JobStatus = JobStatus.RUNNING
    leader: Leader | None = None
    report_fd: int | None = None  # read end of the job's report pipe (jobinit.py)
    report_drain: Callable[[], None] | None = None  # reads what it holds now
    isolation: Isolation | None = None
    stdin: StdinPipe | None = None  # held open so a job that reads it blocks
    output_fd: int | None = None  # read end of stdout+stderr, until EOF
    exit_code: int | None = None
    signal: int | None = None
    started_at: str | None = None  # ISO 8601 UTC
    ended_at: str | None = None
    kill_reason: str | None = None  # set when a kill starts: "kill", "timeout", ...
    # Set once the job has reached a final status and its output is drained.
    ended: Ended = field(default_factory=Ended)
    kill_task: asyncio.Task[None] | None = None
    cleanup: asyncio.Task[None] | None = None  # stopping what it left behind
    launching: bool = False  # its process is made but not known to run yet
    output_evicted: bool = False  # dropped to keep the server's output budget
    failure: str | None = None  # why a failed job failed, where known: "oom"
    limits: Limits | None = None  # as applied
    unapplied: tuple[tuple[str, str], ...] = ()
    controls: JobControllers | None = None  # its limits' cgroups, until it is gone
    final_usage: Usage | None = None  # read once it is gone
    ended_when: float = 0.0  # time.monotonic() of its end, for retention
    on_start: Callable[[Job], None] | None = None  # its command runs (said before any end)
    on_end: Callable[[Job], None] | None = None
    main_ended: int | None = None  # its init said the main process ended, while launching
    timeout: asyncio.TimerHandle | None = None
    cgroup: JobCgroup | None = None
    target: KillTarget | None = None  # how to find and signal all its processes
    name: str | None = None  # its owner's handle for it (worker run --name)
    start_error: str | None = None  # why it could not start
    signals_sent: frozenset[int] = NO_SIGNALS  # by its owner, one at a time (kill -s)
    # Resolved (and replaced) whenever output arrives or the job ends, so
    # followers wait for news without polling.
    _news: asyncio.Future[None] | None = None
    # Its snapshot once settled: nothing in it can change any more, and a
    # page of a list asks for it again and again.
    _settled: JobSnapshot | None = None

    main_pid: int | None = None  # the job's main process, as this host sees it

    @property
    def pid(self) -> int | None:
        return self.main_pid

    def append_output(self, data: bytes) -> None:
        self.output.append(data)
        self.announce()

    async def news(self) -> None:
        if self._news is None:
            self._news = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._news)

    def announce(self) -> None:
        if self._news is not None:
            if not self._news.done():
                self._news.set_result(None)
            self._news = None

    def finish(self, returncode: int) -> None:
        """Record how the job's main process ended (``returncode`` as Popen
        gives it), and, for a SIGKILL, whether it was the kernel's for the
        job's memory limit (the only end that needs that counter read)."""
        if self.kill_reason is None and returncode < 0 and -returncode in self.signals_sent:
            self.kill_reason = "signal"  # it died of a signal its owner sent
        if returncode < 0:
            self.signal = -returncode
        else:
            self.exit_code = returncode
        if self.kill_reason is not None:
            self.status = states.move(self.status, JobStatus.KILLED)
        elif returncode == 0:
            self.status = states.move(self.status, JobStatus.COMPLETED)
        else:
            self.status = states.move(self.status, JobStatus.FAILED)
            killed = returncode == -signal.SIGKILL
            if killed and self.controls is not None and self.controls.oom_killed():
                self.failure = "oom"
        self._end()

    def fail_to_start(self, reason: str) -> None:
        self.start_error = reason
        self.status = states.move(self.status, JobStatus.FAILED)
        self.output.append(reason.encode("utf-8", "replace") + b"\n")
        self._end()

    def _end(self) -> None:
        self.ended_at = now_iso()
        if self.timeout is not None:
            self.timeout.cancel()
            self.timeout = None
        if self.stdin is not None:
            self.stdin.close()  # nobody will read it now
        self.ended.set()
        self.announce()
        log.info("%s", ended_line(self), extra=ended_fields(self))
        if self.on_end is not None:
            self.on_end(self)
        self.retire()

    def retire(self) -> None:
        """Once the job is final and every process of it is gone (its
        leader reaped): drop what only a running job needs. A finished job
        is kept for long, by the thousand; its handles, targets, paths and
        callbacks are most of what it would cost, and would keep the
        allocator's arenas they sit in from being given back."""
        leader = self.leader
        if not self.status.is_final or (
            leader is not None and (leader.returncode is None or not leader.gone)
        ):
            return
        self.leader = None
        self.stdin = None
        self.target = None
        self.kill_task = None
        self.cleanup = None
        self.on_start = None
        self.on_end = None
        self.signals_sent = NO_SIGNALS
        if self.ended.is_set():
            self.ended = ENDED

    def snapshot(self, usage: bool = True) -> JobSnapshot:
        """The job now; ``usage`` false spares reading a running job's
        counters (a page of a list wants none)."""
        if self._settled is not None:
            return self._settled
        snapshot = JobSnapshot(
            id=self.id,
            owner=self.owner,
            status=self.status,
            command=self.command,
            args=self.args,
            pid=self.pid,
            exit_code=self.exit_code,
            signal=self.signal,
            started_at=self.started_at,
            ended_at=self.ended_at,
            reason=self.kill_reason if self.status is JobStatus.KILLED else self.failure,
            isolation=self.isolation,
            limits=self.limits,
            unapplied=self.unapplied,
            usage=self.final_usage if self.final_usage or not usage else self._live_usage(),
            name=self.name,
            error=self.start_error,
            settled=self.status.is_final and self.controls is None,
        )
        if snapshot.settled:
            self._settled = snapshot
        return snapshot

    def _live_usage(self) -> Usage | None:
        return self.controls.usage() if self.controls is not None else None


def seconds_between(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    begin = datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))
    return (datetime.datetime.fromisoformat(end.replace("Z", "+00:00")) - begin).total_seconds()


def ended_line(job: Job) -> str:
    """How a job ended, for the server's log (never its output)."""
    if job.start_error is not None:
        return f"job {job.id} of {job.owner} could not start: {job.start_error}"
    how = f"exit code {job.exit_code}" if job.exit_code is not None else f"signal {job.signal}"
    reason = f", {job.kill_reason}" if job.status is JobStatus.KILLED else ""
    took = seconds_between(job.started_at, job.ended_at)
    after = f" after {took:.3f} s" if took is not None else ""
    return f"job {job.id} of {job.owner} {job.status.value} ({how}{reason}){after}"


def ended_fields(job: Job) -> dict[str, object]:
    return {
        "event": "job_ended",
        "job": job.id,
        "user": job.owner,
        "status": job.status.value,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "reason": job.kill_reason if job.status is JobStatus.KILLED else job.failure,
        "duration": seconds_between(job.started_at, job.ended_at),
        "error": job.start_error,
    }


def started_line(job: Job) -> str:
    command = shlex.join([job.command, *job.args])
    named = f" ({job.name})" if job.name else ""
    return f"job {job.id}{named} of {job.owner} started, pid {job.pid}: {command}"


def started_fields(job: Job) -> dict[str, object]:
    return {
        "event": "job_started",
        "job": job.id,
        "user": job.owner,
        "job_name": job.name,
        "pid": job.pid,
        "command": [job.command, *job.args],
    }
