"""The output budget: who loses output first when it is full (real buffers,
jobs that are only records)."""

from __future__ import annotations

from worker.buffer import OutputBuffer
from worker.executor.budget import FLOOR, OutputBudget
from worker.executor.job import Job
from worker.protocol import JobStatus

KiB = 1 << 10


def job(job_id: int, owner: str = "alice") -> Job:
    return Job(id=job_id, owner=owner, command="yes", args=(), output=OutputBuffer())


def write(budget: OutputBudget, which: Job, size: int) -> None:
    before = which.output.kept
    which.output.append(b"x" * size)
    budget.charge(which, which.output.kept - before)


def finish(budget: OutputBudget, which: Job) -> None:
    which.status = JobStatus.COMPLETED
    budget.finished(which)


def test_the_oldest_finished_jobs_lose_their_output_first() -> None:
    budget = OutputBudget(total=1000 * KiB)
    old, newer, running = job(1), job(2), job(3)
    for each in (old, newer, running):
        budget.started(each)
    write(budget, old, 300 * KiB)
    write(budget, newer, 300 * KiB)
    finish(budget, old)
    finish(budget, newer)
    write(budget, running, 500 * KiB)  # 1100 KiB in all: over
    assert old.output_evicted and old.output.kept == 0
    assert not newer.output_evicted and newer.output.kept == 300 * KiB
    assert running.output.kept == 500 * KiB
    assert budget.kept == 800 * KiB
    assert old.output.size == 300 * KiB  # offsets go on; the bytes are gone


def test_then_running_jobs_keep_a_fair_share() -> None:
    budget = OutputBudget(total=1000 * KiB)
    jobs = [job(i) for i in range(4)]
    for each in jobs:
        budget.started(each)
    for each in jobs:
        write(budget, each, 400 * KiB)
    assert budget.kept <= 1000 * KiB
    assert all(each.output.kept <= 250 * KiB for each in jobs)
    assert jobs[-1].output.read(0, 1 << 30)[1]  # its newest bytes are still there


def test_a_user_over_their_own_budget_loses_only_their_output() -> None:
    budget = OutputBudget(total=10_000 * KiB, per_user=500 * KiB)
    bobs, alices = job(1, "bob"), job(2, "alice")
    budget.started(bobs)
    budget.started(alices)
    write(budget, bobs, 400 * KiB)
    finish(budget, bobs)
    later = job(3, "alice")
    budget.started(later)
    write(budget, alices, 400 * KiB)
    write(budget, later, 400 * KiB)  # alice: 800 KiB of her 500
    assert bobs.output.kept == 400 * KiB and not bobs.output_evicted
    assert budget.used_by("alice") <= 500 * KiB
    assert budget.used_by("bob") == 400 * KiB


def test_no_running_job_is_cut_below_the_floor() -> None:
    budget = OutputBudget(total=FLOOR)
    jobs = [job(i) for i in range(8)]
    for each in jobs:
        budget.started(each)
        write(budget, each, FLOOR)
    assert all(each.output.kept == FLOOR for each in jobs)  # the floor wins


def test_forgetting_a_job_gives_its_share_back() -> None:
    budget = OutputBudget(total=1000 * KiB)
    done = job(1)
    budget.started(done)
    write(budget, done, 600 * KiB)
    finish(budget, done)
    budget.forget(done)
    assert budget.kept == 0 and budget.used_by("alice") == 0
