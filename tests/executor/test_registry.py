"""The job log's bookkeeping: pages of an owner's jobs and idempotency keys."""

from __future__ import annotations

import itertools

import pytest

from worker.buffer import OutputBuffer
from worker.errors import IdempotencyConflict, JobNotFound
from worker.executor import registry
from worker.executor.job import Job
from worker.executor.registry import JobRegistry
from worker.protocol import JobStatus, RunJob


def add(log: JobRegistry, owner: str, status: JobStatus = JobStatus.RUNNING) -> Job:
    job = Job(id=log.next_id(), owner=owner, command="true", args=(), output=OutputBuffer())
    job.status = status
    log.add(job)
    return job


def flat(pages: list[list[int]]) -> list[int]:
    return list(itertools.chain.from_iterable(pages))


def walk(log: JobRegistry, owner: str, status: JobStatus | None, limit: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        jobs, before = log.page(owner, status, limit, before)
        pages.append([job.id for job in jobs])
        if before is None:
            return pages


def test_pages_are_newest_first_and_only_the_owners() -> None:
    log = JobRegistry()
    for i in range(25):
        add(log, "alice" if i % 5 else "bob")
    alice = [job.id for job in log if job.owner == "alice"]
    pages = walk(log, "alice", None, 7)
    assert [len(page) for page in pages] == [7, 7, 6]
    assert flat(pages) == sorted(alice, reverse=True)
    assert walk(log, "carol", None, 7) == [[]]


def test_a_status_filter_pages_too() -> None:
    log = JobRegistry()
    done = [
        add(log, "alice", JobStatus.COMPLETED if i % 3 == 0 else JobStatus.RUNNING).id
        for i in range(30)
    ]
    wanted = [i for n, i in enumerate(done) if n % 3 == 0]
    pages = walk(log, "alice", JobStatus.COMPLETED, 4)
    assert flat(pages) == sorted(wanted, reverse=True)


def test_a_page_looks_at_a_bounded_number_of_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MAX_SCAN", 10)
    log = JobRegistry()
    rare = add(log, "alice", JobStatus.FAILED)
    for _ in range(35):
        add(log, "alice")
    jobs, before = log.page("alice", JobStatus.FAILED, 100, None)
    assert jobs == [] and before is not None  # not there yet, but go on from here
    pages = walk(log, "alice", JobStatus.FAILED, 100)
    assert flat(pages) == [rare.id]


def test_someone_elses_job_is_not_found() -> None:
    log = JobRegistry()
    job = add(log, "alice")
    assert log.get("alice", job.id) is job
    with pytest.raises(JobNotFound, match=f"job {job.id} not found"):
        log.get("bob", job.id)


def test_idempotency_keys_are_per_owner_and_per_request() -> None:
    log = JobRegistry()
    request = RunJob(1, "alice", "make", ("test",), idempotency_key="k")
    assert log.made_by(request) is None
    job = Job(
        id=log.next_id(), owner="alice", command="make", args=("test",), output=OutputBuffer()
    )
    log.add(job, request)
    assert log.made_by(RunJob(2, "alice", "make", ("test",), idempotency_key="k")) == job.id
    assert log.made_by(RunJob(3, "bob", "make", ("test",), idempotency_key="k")) is None
    assert log.made_by(RunJob(4, "alice", "make", ("test",))) is None
    with pytest.raises(IdempotencyConflict):
        log.made_by(RunJob(5, "alice", "make", ("other",), idempotency_key="k"))


def test_idempotency_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MAX_KEYS", 3)
    log = JobRegistry()
    for n in range(5):
        request = RunJob(n, "alice", "true", (), idempotency_key=f"k{n}")
        log.add(
            Job(id=log.next_id(), owner="alice", command="true", args=(), output=OutputBuffer()),
            request,
        )
    assert log.made_by(RunJob(9, "alice", "true", (), idempotency_key="k0")) is None
    assert log.made_by(RunJob(9, "alice", "true", (), idempotency_key="k4")) == 5


def test_finished_jobs_keep_the_order_they_ended_in_through_deletions() -> None:
    log = JobRegistry()
    jobs = [add(log, "alice") for _ in range(200)] + [add(log, "bob")]
    # They end in another order than their IDs'.
    order = jobs[100:200] + jobs[:100]
    for moment, job in enumerate(order, start=1):
        job.status = JobStatus.COMPLETED
        log.ended(job, float(moment))
    log.ended(jobs[200], 1000.0)
    assert log.finished_count("alice") == 200 and log.running("alice") == 0
    assert log.oldest_finished("alice") is order[0]
    # Deleted from the front, the middle, the end: the rest keep their order.
    gone = {*order[:3], *order[50:150], order[-1]}
    for job in gone:
        log.delete(job)
    left = [job for job in order if job not in gone]
    assert log.finished_count("alice") == len(left)
    assert log.finished_of("alice") == left
    assert log.oldest_finished("alice") is left[0]
    assert log.ended_before(60.0) == [job for job in left if job.ended_when < 60.0]
    assert log.finished_of("bob") == [jobs[200]]
    for job in left:
        log.delete(job)
    assert log.finished_count("alice") == 0 and log.oldest_finished("alice") is None
    assert log.finished_of("alice") == [] and log.ended_before(999.0) == []
    assert log.ended_before(2000.0) == [jobs[200]]
