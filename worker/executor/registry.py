"""The job log: every job by ID, each owner's jobs in order, and the
idempotency keys that made them.

Pure bookkeeping, no processes: the executor's core asks it who a job is,
and pages through an owner's jobs without looking at anyone else's.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterator

from worker.errors import IdempotencyConflict, JobNotFound
from worker.executor.job import Job
from worker.protocol import JobStatus, RunJob

# One page never looks at more jobs than this, so a rare status filter over a
# long history costs a bounded time; the page then says where to go on.
MAX_SCAN = 10_000
# Idempotency keys remembered (the newest); a retry comes within seconds.
MAX_KEYS = 50_000
# IDs of deleted jobs left inside a queue of finished ones (those at its
# front go at once) before it is rebuilt without them.
STALE_SLACK = 64


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._by_owner: dict[str, list[int]] = {}  # ascending IDs (deleted ones skipped)
        self._ids = itertools.count(1)
        self._keys: OrderedDict[tuple[str, str], tuple[int, bytes]] = OrderedDict()
        self._running: dict[str, int] = {}
        # Finished jobs' IDs in the order they ended: all, and per owner.
        # Plain queues of the IDs (8 bytes each; an ordered dict's entry is
        # ten times that, for thousands of retained jobs): a deleted job's
        # ID stays in them until it reaches the front, or they are rebuilt.
        self._ended: deque[int] = deque()
        self._ended_by: dict[str, deque[int]] = {}
        self._finished: dict[str, int] = {}  # per owner, how many are kept

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, job: Job, request: RunJob | None = None) -> None:
        self._jobs[job.id] = job
        self._by_owner.setdefault(job.owner, []).append(job.id)
        self._running[job.owner] = self._running.get(job.owner, 0) + 1
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

    def running(self, owner: str) -> int:
        return self._running.get(owner, 0)

    def ended(self, job: Job, when: float) -> None:
        """``job`` has reached its final status (call once); ``when``: the
        ``time.monotonic()`` of its end, kept as its ``ended_when``."""
        job.ended_when = when
        self._running[job.owner] -= 1
        if not self._running[job.owner]:
            del self._running[job.owner]
        self._ended.append(job.id)
        self._ended_by.setdefault(job.owner, deque()).append(job.id)
        self._finished[job.owner] = self._finished.get(job.owner, 0) + 1

    def finished_count(self, owner: str) -> int:
        return self._finished.get(owner, 0)

    def oldest_finished(self, owner: str) -> Job | None:
        ended = self._ended_by.get(owner)
        return self._jobs[ended[0]] if ended else None

    def finished_of(self, owner: str) -> list[Job]:
        jobs = self._jobs
        return [jobs[i] for i in self._ended_by.get(owner, ()) if i in jobs]

    def ended_before(self, moment: float) -> list[Job]:
        """Finished jobs that ended before ``moment``, oldest first."""
        found = []
        for job_id in self._ended:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if job.ended_when >= moment:
                break
            found.append(job)
        return found

    def delete(self, job: Job) -> None:
        """Forget a finished job (its ID is never given again)."""
        del self._jobs[job.id]
        if job.ended_when:  # it had ended (see ``ended``)
            owner = job.owner
            left = self._finished[owner] - 1
            ended = self._ended_by[owner]
            if left:
                self._finished[owner] = left
                _without_stale(ended, left, self._jobs)
            else:
                del self._finished[owner], self._ended_by[owner]
            _without_stale(self._ended, len(self._jobs), self._jobs)
        ids = self._by_owner[job.owner]
        # Deleted IDs are skipped when paging; compact once they are many.
        if len(ids) > 64 and len(ids) > 2 * self.count(job.owner):
            self._by_owner[job.owner] = [i for i in ids if i in self._jobs]

    def count(self, owner: str) -> int:
        return self.running(owner) + self.finished_count(owner)

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
            job = self._jobs.get(ids[position])
            if job is not None and (status is None or job.status is status):
                found.append(job)
        more = position > 0
        return found, (ids[position] if more else None)


def _without_stale(ids: deque[int], live: int, jobs: dict[int, Job]) -> None:
    """Drop deleted IDs from the front of ``ids``, and from all of it once
    they outnumber the ``live`` ones (at most) by ``STALE_SLACK``."""
    while ids and ids[0] not in jobs:
        ids.popleft()
    if len(ids) > 2 * live + STALE_SLACK:
        kept = [i for i in ids if i in jobs]
        ids.clear()
        ids.extend(kept)


def _fingerprint(request: RunJob) -> bytes:
    what = (request.command, request.args, request.env, request.cwd, request.timeout)
    return hashlib.blake2b(repr(what).encode("utf-8", "surrogatepass"), digest_size=16).digest()
