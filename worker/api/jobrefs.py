"""Finding the job a request names (by ID or by name), and waiting for it.

A path names a job by its ID or by a name: the caller's newest job of that
name, found by the executor. Either way it is one request to the API.
"""

from __future__ import annotations

from worker.api import parse
from worker.api.executor_client import ExecutorClient
from worker.protocol import WATCH_TIMEOUT, FindJob, GetStatus, JobInfo, JobSnapshot, WaitJob


class JobLookup:
    def __init__(self, executor: ExecutorClient) -> None:
        self._executor = executor

    async def snapshot(self, user: str, raw: str | int) -> JobSnapshot:
        """The job ``raw`` names (an ID, or a name), as it is now."""
        ref = parse.job_ref(raw) if isinstance(raw, str) else raw
        if isinstance(ref, int):
            job_id: int = ref
            settled = self._executor.settled_job(user, job_id)
            if settled is not None:
                return settled  # it cannot have changed since
            reply = await self._executor.call(lambda rid: GetStatus(rid, user, job_id), JobInfo)
        else:
            name: str = ref
            reply = await self._executor.call(lambda rid: FindJob(rid, user, name), JobInfo)
        return reply.job

    async def job_id(self, user: str, raw: str) -> int:
        ref = parse.job_ref(raw)
        return ref if isinstance(ref, int) else (await self.snapshot(user, ref)).id

    async def final(self, user: str, job_id: int) -> JobSnapshot:
        """The job once it has ended, however long that takes: the executor
        answers within WATCH_TIMEOUT, and is asked again."""
        while True:
            reply = await self._executor.call(
                lambda rid: WaitJob(rid, user, job_id, WATCH_TIMEOUT),
                JobInfo,
                timeout=WATCH_TIMEOUT + self._executor.timeout,
            )
            if reply.job.status.is_final:
                return reply.job
