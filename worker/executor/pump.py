"""Moving a job's stdout+stderr from its pipe into its output buffer."""

from __future__ import annotations

import asyncio
import os

from worker.executor.budget import OutputBudget
from worker.executor.job import Job

READ_SIZE = 64 << 10
# A job writing at full speed refills its pipe while we keep what we read:
# reading again at once, while a read comes back full, saves a turn of the
# event loop (and its wake-up) per 64 KiB; at most this many, so no one
# else's request waits behind more than 128 KiB of one job's output.
READS_PER_WAKE = 2
# A job's main process may exit while a descendant still holds the output
# pipe open; the final status does not wait for that descendant.
DRAIN_LIMIT = 16 << 20


class OutputPump:
    def __init__(self, loop: asyncio.AbstractEventLoop, budget: OutputBudget) -> None:
        self._loop = loop
        self._budget = budget

    def start(self, job: Job, fd: int) -> None:
        job.output_fd = fd
        self._loop.add_reader(fd, self._on_readable, job)

    def _on_readable(self, job: Job) -> None:
        for _ in range(READS_PER_WAKE):
            if job.output_fd is None:
                return
            try:
                data = os.read(job.output_fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self._append(job, data)
            else:
                self.close(job)
                return
            if len(data) < READ_SIZE:
                return

    def drain(self, job: Job) -> None:
        """Take what is already in the pipe, so a final job shows all its output."""
        taken = 0
        while job.output_fd is not None and taken < DRAIN_LIMIT:
            try:
                data = os.read(job.output_fd, READ_SIZE)
            except OSError:  # BlockingIOError included: the pipe is empty
                return
            if not data:
                self.close(job)
                return
            self._append(job, data)
            taken += len(data)

    def _append(self, job: Job, data: bytes) -> None:
        before = job.output.kept
        job.append_output(data)
        self._budget.charge(job, job.output.kept - before)

    def close(self, job: Job) -> None:
        if job.output_fd is not None:
            self._loop.remove_reader(job.output_fd)
            os.close(job.output_fd)
            job.output_fd = None
            job.announce()  # followers learn that no byte can follow
