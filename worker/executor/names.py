"""Job names: each owner's handles for their jobs (``worker run --name``).

A name may be given to any number of jobs; it means the owner's newest job
of that name that the executor still knows.
"""

from __future__ import annotations

from typing import Protocol

from worker.errors import JobNotFound
from worker.executor.job import Job

# Every this many new jobs of one name, the IDs of forgotten ones are dropped.
COMPACT_AT = 64


class Jobs(Protocol):
    def get(self, owner: str, job_id: int) -> Job: ...


class JobNames:
    def __init__(self, jobs: Jobs) -> None:
        self._jobs = jobs
        self._ids: dict[tuple[str, str], list[int]] = {}  # ascending IDs

    def add(self, job: Job) -> None:
        if job.name is None:
            return
        ids = self._ids.setdefault((job.owner, job.name), [])
        ids.append(job.id)
        if len(ids) % COMPACT_AT == 0:
            ids[:] = [job_id for job_id in ids if self._known(job.owner, job_id)]

    def newest(self, owner: str, name: str) -> Job:
        key = (owner, name)
        ids = self._ids.get(key, [])
        # Newest first; IDs of jobs since forgotten (worker rm, retention)
        # are dropped on the way.
        while ids:
            try:
                return self._jobs.get(owner, ids[-1])
            except JobNotFound:
                ids.pop()
        self._ids.pop(key, None)
        raise JobNotFound(f"no job named {name!r}")

    def _known(self, owner: str, job_id: int) -> bool:
        try:
            self._jobs.get(owner, job_id)
        except JobNotFound:
            return False
        return True
