"""The memory that jobs' output may take, in all and per user.

Every byte of output a job keeps is counted. Past the total budget (or a
user's own), the output of the oldest finished jobs goes first (their
``out`` says so), then running jobs keep less: each gets a fair share of
what is left, and drops its oldest bytes beyond it. So the executor holds
no more output than the budget, whatever and however many jobs print.
"""

from __future__ import annotations

from collections import OrderedDict

from worker.executor.job import Job

# No running job is cut below this: its newest output stays readable.
FLOOR = 64 << 10


class OutputBudget:
    def __init__(self, total: int, per_user: int | None = None) -> None:
        self.total = total
        self.per_user = per_user
        self.kept = 0
        self.kept_by: dict[str, int] = {}
        self._finished: OrderedDict[int, Job] = OrderedDict()  # with output, oldest first
        self._finished_by: dict[str, OrderedDict[int, Job]] = {}
        self._running: dict[str, dict[int, Job]] = {}

    def used_by(self, owner: str) -> int:
        return self.kept_by.get(owner, 0)

    def started(self, job: Job) -> None:
        self._running.setdefault(job.owner, {})[job.id] = job

    def charge(self, job: Job, delta: int) -> None:
        """``job`` now keeps ``delta`` more bytes (or fewer, if negative)."""
        if delta == 0:
            return
        self.kept += delta
        self.kept_by[job.owner] = self.kept_by.get(job.owner, 0) + delta
        if delta > 0:
            self._settle(job.owner)

    def finished(self, job: Job) -> None:
        running = self._running.get(job.owner)
        if running is not None:
            running.pop(job.id, None)
            if not running:
                del self._running[job.owner]
        if job.output.kept:
            self._finished[job.id] = job
            self._finished_by.setdefault(job.owner, OrderedDict())[job.id] = job

    def forget(self, job: Job) -> None:
        """The job is gone: its output no longer counts."""
        self.finished(job)
        self._drop(job)

    def _settle(self, owner: str) -> None:
        if self.per_user is not None and self.kept_by.get(owner, 0) > self.per_user:
            while self.kept_by[owner] > self.per_user and self._finished_by.get(owner):
                self._evict(next(iter(self._finished_by[owner].values())))
            if self.kept_by[owner] > self.per_user:
                self._share(list(self._running.get(owner, {}).values()), self.per_user)
        while self.kept > self.total and self._finished:
            self._evict(next(iter(self._finished.values())))
        if self.kept > self.total:
            self._share([j for jobs in self._running.values() for j in jobs.values()], self.total)

    def _evict(self, job: Job) -> None:
        self._drop(job)
        job.output_evicted = True
        job.announce()

    def _drop(self, job: Job) -> None:
        self._finished.pop(job.id, None)
        by_owner = self._finished_by.get(job.owner)
        if by_owner is not None:
            by_owner.pop(job.id, None)
            if not by_owner:
                del self._finished_by[job.owner]
        dropped = job.output.kept
        job.output.drop_all()
        self.kept -= dropped
        self.kept_by[job.owner] = self.kept_by.get(job.owner, 0) - dropped
        if not self.kept_by[job.owner]:
            del self.kept_by[job.owner]

    def _share(self, running: list[Job], budget: int) -> None:
        """Cap each running job at a fair share of ``budget``."""
        if not running:
            return
        share = max(FLOOR, budget // len(running))
        for job in running:
            if job.output.kept > share:
                before = job.output.kept
                job.output.set_limit(share)
                dropped = before - job.output.kept
                self.kept -= dropped
                self.kept_by[job.owner] -= dropped
