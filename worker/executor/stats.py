"""The executor's counters, answered to ``GetStats`` for the API's /metrics.

Plain integers: the executor has no metrics library; the API turns a
``Stats`` reply into metrics when it is scraped. Every label is from a fixed
set (statuses, kill reasons), except users, who come from the users file.

Output bytes are counted from the buffers themselves (``size`` is every byte
a job wrote, ``start`` every byte it dropped), summed over the jobs kept
plus what deleted jobs had, so nothing is added to the path output takes.
The budget's own drops are told apart by ``CountingBudget``; the rest of
what was dropped went past a job's cap (``--max-output``, or the smaller
share the budget gave a running job).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from worker.executor.budget import OutputBudget
from worker.executor.job import Job
from worker.protocol import JobStatus, Stats

NO_REASON = "none"
# A job that could not start ends failed, with no exit of its own.
START_ERROR = "start_error"


class CountingBudget(OutputBudget):
    """The output budget, counting the bytes it drops to make room (the
    output of finished jobs it evicts, running jobs cut to their share)."""

    def __init__(self, total: int, per_user: int | None = None) -> None:
        super().__init__(total, per_user)
        self.dropped = 0

    def charge(self, job: Job, delta: int) -> None:
        expected = self.kept + delta
        super().charge(job, delta)
        self.dropped += expected - self.kept


class ExecutorStats:
    def __init__(self) -> None:
        self.started = 0
        self.ended: Counter[tuple[str, str]] = Counter()
        # Kept at 0 once a user's jobs are all over, so the series stays.
        self.running: dict[str, int] = {}
        self.kills: Counter[str] = Counter()
        self._gone_written = 0  # output of deleted jobs
        self._gone_dropped = 0

    def job_started(self, owner: str) -> None:
        self.started += 1
        self.running[owner] = self.running.get(owner, 0) + 1

    def job_ended(self, job: Job) -> None:
        self.running[job.owner] = max(0, self.running.get(job.owner, 0) - 1)
        self.ended[(job.status.value, reason_of(job))] += 1

    def kill_started(self, reason: str) -> None:
        self.kills[reason] += 1

    def job_deleted(self, job: Job) -> None:
        """Before its output is forgotten: what it wrote and dropped still counts."""
        self._gone_written += job.output.size
        self._gone_dropped += job.output.start

    def reply(self, request_id: int, jobs: Iterable[Job], budget: CountingBudget) -> Stats:
        written, dropped = self._gone_written, self._gone_dropped
        for job in jobs:
            written += job.output.size
            dropped += job.output.start
        return Stats(
            request_id,
            jobs_started=self.started,
            jobs_ended=tuple((s, r, n) for (s, r), n in sorted(self.ended.items())),
            running=tuple(sorted(self.running.items())),
            kills=tuple(sorted(self.kills.items())),
            output_bytes=written,
            dropped_cap=max(0, dropped - budget.dropped),
            dropped_budget=budget.dropped,
            output_kept=budget.kept,
        )


def reason_of(job: Job) -> str:
    """Why it ended as it did: a kill's reason, "oom", "start_error" or "none"."""
    if job.start_error is not None:
        return START_ERROR
    reason = job.kill_reason if job.status is JobStatus.KILLED else job.failure
    return reason or NO_REASON
