"""The job log: every job by ID, each owner's jobs in order, and the
idempotency keys that made them.

Pure bookkeeping, no processes: the executor's core asks it who a job is,
and pages through an owner's jobs without looking at anyone else's.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import OrderedDict
from collections.abc import Iterator

from worker.errors import IdempotencyConflict, JobNotFound
from worker.executor.job import Job
from worker.protocol import JobStatus, RunJob

# One page never looks at more jobs than this, so a rare status filter over a
# long history costs a bounded time; the page then says where to go on.
MAX_SCAN = 10_000
# Idempotency keys remembered (the newest); a retry comes within seconds.
MAX_KEYS = 50_000


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._by_owner: dict[str, list[int]] = {}  # ascending IDs
        self._ids = itertools.count(1)
        self._keys: OrderedDict[tuple[str, str], tuple[int, bytes]] = OrderedDict()

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, job: Job, request: RunJob | None = None) -> None:
        self._jobs[job.id] = job
        self._by_owner.setdefault(job.owner, []).append(job.id)
        if request is not None and request.idempotency_key is not None:
            key = (request.owner, request.idempotency_key)
            self._keys[key] = (job.id, _fingerprint(request))
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)

    def made_by(self, request: RunJob) -> int | None:
        """The job an earlier request with this idempotency key made, if any
        (and still known); an ``IdempotencyConflict`` if that request asked
        for something else."""
        if request.idempotency_key is None:
            return None
        found = self._keys.get((request.owner, request.idempotency_key))
        if found is None or found[0] not in self._jobs:
            return None
        job_id, fingerprint = found
        if fingerprint != _fingerprint(request):
            raise IdempotencyConflict(
                f"Idempotency-Key {request.idempotency_key!r} already started job {job_id} "
                "with a different request"
            )
        return job_id

    def get(self, owner: str, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        # Someone else's job is answered exactly like a missing one.
        if job is None or job.owner != owner:
            raise JobNotFound.for_job(job_id)
        return job

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def page(
        self, owner: str, status: JobStatus | None, limit: int, before: int | None
    ) -> tuple[list[Job], int | None]:
        """Up to ``limit`` of the owner's jobs with IDs below ``before``,
        newest first, and the ``before`` of the next page (None: no more)."""
        ids = self._by_owner.get(owner, [])
        end = len(ids) if before is None else bisect.bisect_left(ids, before)
        found: list[Job] = []
        position = end
        while position > 0 and len(found) < limit and end - position < MAX_SCAN:
            position -= 1
            job = self._jobs[ids[position]]
            if status is None or job.status is status:
                found.append(job)
        more = position > 0
        return found, (ids[position] if more else None)


def _fingerprint(request: RunJob) -> bytes:
    what = (request.command, request.args, request.env, request.cwd, request.timeout)
    return hashlib.blake2b(repr(what).encode("utf-8", "surrogatepass"), digest_size=16).digest()
