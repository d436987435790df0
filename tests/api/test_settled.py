"""What the API keeps of settled jobs: only those, only for their owner,
the last ones kept, and nothing of a job it was told is forgotten."""

from __future__ import annotations

from worker.api.jobjson import status_json
from worker.api.settled import SettledJobs
from worker.protocol import JobSnapshot, JobStatus


def snapshot(job_id: int, owner: str = "alice", settled: bool = True) -> JobSnapshot:
    status = JobStatus.COMPLETED if settled else JobStatus.RUNNING
    return JobSnapshot(job_id, owner, status, "true", (), 10, 0, None, "t0", "t1", settled=settled)


def test_keeps_settled_jobs_for_their_owner_only() -> None:
    kept = SettledJobs()
    kept.keep([snapshot(1), snapshot(2, settled=False), snapshot(3, owner="bob")])
    assert kept.get("alice", 1) == snapshot(1)
    assert kept.get("alice", 2) is None  # still running: it can change
    assert kept.get("alice", 3) is None  # bob's: the executor answers (404)
    assert kept.get("bob", 3) == snapshot(3, owner="bob")
    assert len(kept) == 2


def test_forgotten_jobs_are_dropped() -> None:
    kept = SettledJobs()
    kept.keep([snapshot(1), snapshot(2), snapshot(3)])
    kept.forget((1, 3, 99))
    assert [kept.get("alice", i) is None for i in (1, 2, 3)] == [True, False, True]
    kept.clear()
    assert len(kept) == 0


def test_holds_at_most_its_size_dropping_the_first_kept() -> None:
    kept = SettledJobs(size=3)
    kept.keep(snapshot(i) for i in range(1, 6))
    assert len(kept) == 3
    assert kept.get("alice", 2) is None and kept.get("alice", 3) is not None
    kept.keep([snapshot(3)])  # again: no duplicate, no eviction
    assert len(kept) == 3 and kept.get("alice", 3) is not None


def test_json_is_the_status_body_and_kept_only_with_the_job() -> None:
    kept = SettledJobs(size=2)
    kept.keep([snapshot(1), snapshot(2)])
    text = kept.json(snapshot(1))
    assert text == status_json(snapshot(1))
    assert kept.json(snapshot(1)) is text  # kept beside it
    running = snapshot(3, settled=False)
    assert kept.json(running) == status_json(running)
    assert kept.json(running) is not kept.json(running)  # it can change: never kept
    assert kept.json(snapshot(4)) is not kept.json(snapshot(4))  # not kept: neither is its text
    kept.forget([1])
    assert kept.json(snapshot(1)) is not text
    kept.keep([snapshot(1)])
    again = kept.json(snapshot(1))
    kept.keep([snapshot(5)])  # drops 2, the first kept
    kept.keep([snapshot(6)])  # drops 1
    assert kept.json(snapshot(1)) is not again
    assert len(kept._json) == 0  # nothing left of the dropped ones
