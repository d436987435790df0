"""A job's end as it records it, and its snapshot: built afresh while it
can change, kept once settled."""

from __future__ import annotations

import signal

import pytest

from worker.buffer import OutputBuffer
from worker.executor.job import Job
from worker.protocol import JobStatus, Usage


class _Controls:
    """A job's cgroup counters, as far as a job reads them; each OOM
    counter read noted."""

    def __init__(self, oom_killed: bool = False) -> None:
        self._oom_killed = oom_killed
        self.oom_reads = 0

    def usage(self) -> Usage:
        return Usage(cpu_seconds=0.5, memory_peak=1 << 20, pids_peak=2)

    def oom_killed(self) -> bool:
        self.oom_reads += 1
        return self._oom_killed


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


@pytest.mark.parametrize("returncode", [0, 1, -signal.SIGTERM])
def test_the_oom_counter_is_not_read_for_an_end_the_kernel_did_not_force(
    returncode: int,
) -> None:
    ended = job()
    ended.controls = controls = _Controls(oom_killed=True)  # type: ignore[assignment]
    ended.finish(returncode)
    assert controls.oom_reads == 0 and ended.failure is None


@pytest.mark.parametrize(("oom_killed", "failure"), [(True, "oom"), (False, None)])
def test_a_sigkill_is_an_oom_only_if_the_kernel_counted_one(
    oom_killed: bool, failure: str | None
) -> None:
    ended = job()
    ended.controls = controls = _Controls(oom_killed)  # type: ignore[assignment]
    ended.finish(-signal.SIGKILL)
    assert controls.oom_reads == 1
    assert ended.status is JobStatus.FAILED and ended.failure == failure
