"""The executor's counters: jobs by how they ended, kills, and output bytes
written and dropped, told apart by cap and budget (real buffers and budget,
jobs that are only records)."""

from __future__ import annotations

from worker.buffer import OutputBuffer
from worker.executor.job import Job
from worker.executor.stats import CountingBudget, ExecutorStats, reason_of
from worker.protocol import JobStatus

KiB = 1 << 10


def job(job_id: int, owner: str = "alice", cap: int | None = None) -> Job:
    return Job(id=job_id, owner=owner, command="yes", args=(), output=OutputBuffer(cap))


def write(budget: CountingBudget, which: Job, size: int) -> None:
    before = which.output.kept
    which.output.append(b"x" * size)
    budget.charge(which, which.output.kept - before)


def end(stats: ExecutorStats, budget: CountingBudget, which: Job, status: JobStatus) -> None:
    which.status = status
    budget.finished(which)
    stats.job_ended(which)


def test_cap_and_budget_drops_are_told_apart() -> None:
    budget, stats = CountingBudget(total=1000 * KiB), ExecutorStats()
    capped, old, running = job(1, cap=100 * KiB), job(2), job(3)
    for each in (capped, old, running):
        budget.started(each)
        stats.job_started(each.owner)
    write(budget, capped, 150 * KiB)  # 50 KiB past its own cap
    write(budget, old, 300 * KiB)
    end(stats, budget, old, JobStatus.COMPLETED)
    write(budget, running, 700 * KiB)  # 1100 KiB kept: the old job's output goes
    assert old.output_evicted
    reply = stats.reply(7, [capped, old, running], budget)
    assert reply.request_id == 7
    assert reply.output_bytes == 1150 * KiB
    assert reply.dropped_cap == 50 * KiB
    assert reply.dropped_budget == 300 * KiB
    assert reply.output_kept == budget.kept == 800 * KiB
    assert reply.jobs_started == 3
    assert reply.running == (("alice", 2),)
    assert reply.jobs_ended == (("completed", "none", 1),)


def test_deleted_jobs_still_count() -> None:
    budget, stats = CountingBudget(total=1000 * KiB), ExecutorStats()
    gone = job(1, cap=10 * KiB)
    budget.started(gone)
    stats.job_started(gone.owner)
    write(budget, gone, 25 * KiB)
    end(stats, budget, gone, JobStatus.FAILED)
    stats.job_deleted(gone)  # before its output is forgotten, as the core does
    budget.forget(gone)
    reply = stats.reply(1, [], budget)
    assert (reply.output_bytes, reply.dropped_cap, reply.dropped_budget) == (25 * KiB, 15 * KiB, 0)
    assert reply.output_kept == 0
    assert reply.running == (("alice", 0),)  # the series stays, at 0


def test_reasons_and_kills() -> None:
    stats = ExecutorStats()
    killed, oom, unstarted, plain = job(1), job(2), job(3), job(4)
    killed.status, killed.kill_reason = JobStatus.KILLED, "timeout"
    oom.status, oom.failure = JobStatus.FAILED, "oom"
    unstarted.status, unstarted.start_error = JobStatus.FAILED, "nope: command not found"
    plain.status, plain.kill_reason = JobStatus.COMPLETED, "kill"  # ended before the kill
    assert [reason_of(j) for j in (killed, oom, unstarted, plain)] == [
        "timeout",
        "oom",
        "start_error",
        "none",
    ]
    for reason in ("kill", "timeout", "kill", "signal"):
        stats.kill_started(reason)
    reply = stats.reply(1, [], CountingBudget(total=KiB))
    assert reply.kills == (("kill", 2), ("signal", 1), ("timeout", 1))
