"""The output pump on a real pipe: what one wake-up of the event loop takes."""

from __future__ import annotations

import asyncio
import fcntl
import os

from worker.buffer import OutputBuffer
from worker.executor.budget import OutputBudget
from worker.executor.job import Job
from worker.executor.pump import READ_SIZE, READS_PER_WAKE, OutputPump

F_SETPIPE_SZ = 1031


def test_one_wake_up_takes_a_few_full_reads_and_no_more() -> None:
    async def main() -> None:
        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        fcntl.fcntl(write, F_SETPIPE_SZ, 1 << 20)  # room for more than a wake-up takes
        job = Job(id=1, owner="alice", command="yes", args=(), output=OutputBuffer())
        budget = OutputBudget(total=1 << 30)
        budget.started(job)
        pump = OutputPump(asyncio.get_running_loop(), budget)
        written = os.write(write, bytes(range(256)) * (READ_SIZE * (READS_PER_WAKE + 1) // 256))
        pump.start(job, read)
        try:
            pump._on_readable(job)  # one wake-up: the loop's own call, made here
            # Full reads go on, but only so far: the rest waits for the next turn.
            assert job.output.size == READ_SIZE * READS_PER_WAKE < written
            pump._on_readable(job)  # the next turn takes what is left
            assert job.output.size == written
            assert job.output.read(0, written)[1] == bytes(range(256)) * (written // 256)
        finally:
            pump.close(job)
            os.close(write)

    asyncio.run(main())
