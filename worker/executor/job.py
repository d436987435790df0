"""One job as the executor sees it: its process, its output, its state."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field

from worker.buffer import OutputBuffer
from worker.executor.cgroups import JobCgroup
from worker.executor.killer import KillTarget
from worker.executor.stdin import StdinPipe
from worker.protocol import Isolation, JobSnapshot, JobStatus


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ...T06:12:08.123Z."""
    moment = datetime.datetime.now(datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(eq=False)
class Leader:
    """Our child for a job: its main process, or the init of its PID
    namespace (which reports the main process's end on the report pipe)."""

    pid: int
    pidfd: int  # held until reaped: signals through it can never hit a reused PID
    init: bool
    main_pid: int | None = None  # the job's main process, as this host sees it
    returncode: int | None = None  # our child's, once reaped
    leftovers: bool = False  # whether anything of the job was left when it was reaped


@dataclass(eq=False)
class Job:
    id: int
    owner: str
    command: str
    args: tuple[str, ...]
    output: OutputBuffer
    status: JobStatus = JobStatus.RUNNING
    leader: Leader | None = None
    report_fd: int | None = None  # read end of the job's report pipe (jobinit.py)
    isolation: Isolation | None = None
    stdin: StdinPipe | None = None  # held open so a job that reads it blocks
    output_fd: int | None = None  # read end of stdout+stderr, until EOF
    exit_code: int | None = None
    signal: int | None = None
    started_at: str | None = None  # ISO 8601 UTC
    ended_at: str | None = None
    kill_reason: str | None = None  # set when a kill starts: "kill", "timeout", ...
    # Set once the job has reached a final status and its output is drained.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    kill_task: asyncio.Task[None] | None = None
    cleanup: asyncio.Task[None] | None = None  # stopping what it left behind
    launching: bool = False  # its process is made but not known to run yet
    main_ended: int | None = None  # its init said the main process ended, while launching
    timeout: asyncio.TimerHandle | None = None
    cgroup: JobCgroup | None = None
    target: KillTarget | None = None  # how to find and signal all its processes
    # Resolved (and replaced) whenever output arrives or the job ends, so
    # followers wait for news without polling.
    _news: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.leader.main_pid if self.leader else None

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
        """Record how the job's main process ended (``returncode`` as Popen gives it)."""
        if returncode < 0:
            self.signal = -returncode
        else:
            self.exit_code = returncode
        if self.kill_reason is not None:
            self.status = JobStatus.KILLED
        elif returncode == 0:
            self.status = JobStatus.COMPLETED
        else:
            self.status = JobStatus.FAILED
        self._end()

    def fail_to_start(self, reason: str) -> None:
        self.output.append(reason.encode("utf-8", "replace") + b"\n")
        self.status = JobStatus.FAILED
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

    def snapshot(self) -> JobSnapshot:
        return JobSnapshot(
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
            reason=self.kill_reason if self.status is JobStatus.KILLED else None,
            isolation=self.isolation,
        )
