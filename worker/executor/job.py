"""One job as the executor sees it: its process, its output, its state."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field

from worker.executor.cgroups import JobCgroup
from worker.executor.killer import KillTarget
from worker.executor.output import OutputBuffer
from worker.protocol import JobSnapshot, JobStatus


@dataclass(eq=False)
class Job:
    id: int
    owner: str
    command: str
    args: tuple[str, ...]
    output: OutputBuffer
    status: JobStatus = JobStatus.RUNNING
    process: subprocess.Popen[bytes] | None = None
    stdin_fd: int | None = None  # write end, held open so a reading job blocks
    output_fd: int | None = None  # read end of stdout+stderr, until EOF
    exit_code: int | None = None
    signal: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    kill_requested: bool = False
    # Set once the job has reached a final status and its output is drained.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    kill_task: asyncio.Task[None] | None = None
    cgroup: JobCgroup | None = None
    target: KillTarget | None = None  # how to find and signal all its processes

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def finish(self, returncode: int) -> None:
        """Record how the job's main process ended (``returncode`` as Popen gives it)."""
        if returncode < 0:
            self.signal = -returncode
        else:
            self.exit_code = returncode
        if self.kill_requested:
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
        self.ended_at = time.time()
        self.ended.set()

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
        )
