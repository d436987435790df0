"""A job's snapshot: built afresh while it can change, kept once settled."""

from __future__ import annotations

from worker.buffer import OutputBuffer
from worker.executor.job import Job
from worker.protocol import JobStatus, Usage


class _Controls:
    """A job's cgroup counters, as far as a snapshot reads them."""

    def usage(self) -> Usage:
        return Usage(cpu_seconds=0.5, memory_peak=1 << 20, pids_peak=2)


def job() -> Job:
    return Job(id=3, owner="alice", command="true", args=(), output=OutputBuffer())


def test_a_running_job_is_snapshotted_afresh() -> None:
    running = job()
    first = running.snapshot()
    assert not first.settled and first.status is JobStatus.RUNNING
    assert running.snapshot() is not first
    running.finish(0)
    assert running.snapshot().status is JobStatus.COMPLETED


def test_a_settled_job_keeps_one_snapshot() -> None:
    done = job()
    done.finish(1)
    snapshot = done.snapshot()
    assert snapshot.settled and snapshot.status is JobStatus.FAILED and snapshot.exit_code == 1
    assert done.snapshot() is snapshot
    assert done.snapshot(usage=False) is snapshot


def test_a_final_job_is_not_settled_until_its_usage_is_read() -> None:
    ended = job()
    ended.controls = _Controls()  # type: ignore[assignment]
    ended.finish(0)
    live = ended.snapshot()
    assert not live.settled and live.usage == _Controls().usage()
    assert ended.snapshot() is not live
    ended.final_usage, ended.controls = _Controls().usage(), None  # as when its cgroup goes
    settled = ended.snapshot(usage=False)
    assert settled.settled and settled.usage == _Controls().usage()
    assert ended.snapshot() is settled
