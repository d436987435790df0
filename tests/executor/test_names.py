"""A name means its owner's newest job of that name that is still known."""

from __future__ import annotations

import pytest

from worker.buffer import OutputBuffer
from worker.errors import JobNotFound
from worker.executor import names
from worker.executor.job import Job
from worker.executor.names import JobNames


class Jobs(dict[int, Job]):
    def get(self, owner: str, job_id: int) -> Job:  # type: ignore[override]
        job = super().get(job_id)
        if job is None or job.owner != owner:
            raise JobNotFound.for_job(job_id)
        return job


def add(jobs: Jobs, index: JobNames, owner: str, name: str | None) -> Job:
    job = Job(id=len(jobs) + 1, owner=owner, command="true", args=(), output=OutputBuffer())
    job.name = name
    jobs[job.id] = job
    index.add(job)
    return job


def test_the_newest_of_the_owners_wins() -> None:
    jobs = Jobs()
    index = JobNames(jobs)
    add(jobs, index, "alice", "build")
    second = add(jobs, index, "alice", "build")
    add(jobs, index, "bob", "build")
    add(jobs, index, "alice", None)
    assert index.newest("alice", "build") is second
    with pytest.raises(JobNotFound, match="no job named 'test'"):
        index.newest("alice", "test")
    with pytest.raises(JobNotFound):
        index.newest("carol", "build")


def test_forgotten_jobs_give_way_to_older_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "COMPACT_AT", 4)
    jobs = Jobs()
    index = JobNames(jobs)
    made = [add(jobs, index, "alice", "nightly") for _ in range(9)]
    del jobs[made[-1].id]
    assert index.newest("alice", "nightly") is made[-2]
    for job in made[:-1]:
        del jobs[job.id]
    with pytest.raises(JobNotFound):
        index.newest("alice", "nightly")
    assert index._ids == {}
