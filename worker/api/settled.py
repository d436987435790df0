"""Jobs that can no longer change, kept by the API so their status needs no
round trip to the executor.

A job is settled once its status is final and its usage read: from then on
its snapshot is fixed until the job is forgotten (deleted, or past its
retention), which the executor announces with ``JobsForgotten`` the moment
it happens. Entries come only from replies the executor builds and sends in
the loop turn it looks into its job log (status, lookup by name, a page of
the list), so on the one pipe the notice comes after every reply that shows
the job, and ahead of the reply to the request that deleted it: an entry
never outlives its job. The ``size`` entries kept last are kept.

Beside each, once asked for, its status as JSON (a few hundred bytes): a
page of a list is then those pieces joined, not a hundred dicts encoded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from worker.api.jobjson import status_json
from worker.protocol import JobSnapshot

SIZE = 4096


class SettledJobs:
    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._jobs: OrderedDict[int, JobSnapshot] = OrderedDict()
        self._json: dict[int, bytes] = {}  # of kept jobs, made when first asked

    def get(self, owner: str, job_id: int) -> JobSnapshot | None:
        """The owner's settled job; None if not kept (or not the owner's:
        the executor then says 404, as for anyone else's job)."""
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            return None
        return job

    def held(self, job_id: int) -> JobSnapshot | None:
        """The settled job of this ID, whoever's it is: a reply that shows
        it again is decoded as this very snapshot (``protocol.decode``)."""
        return self._jobs.get(job_id)

    def keep(self, jobs: Iterable[JobSnapshot]) -> None:
        for job in jobs:
            if job.settled and job.id not in self._jobs:
                self._jobs[job.id] = job
                if len(self._jobs) > self._size:
                    dropped, _ = self._jobs.popitem(last=False)
                    self._json.pop(dropped, None)

    def json(self, job: JobSnapshot) -> bytes:
        """The job's status as JSON text; kept with the job if it is kept
        (a job is settled for good, and its ID never names another)."""
        if not job.settled:
            return status_json(job)
        text = self._json.get(job.id)
        if text is None:
            text = status_json(job)
            if job.id in self._jobs:
                self._json[job.id] = text
        return text

    def forget(self, job_ids: Iterable[int]) -> None:
        for job_id in job_ids:
            self._jobs.pop(job_id, None)
            self._json.pop(job_id, None)

    def clear(self) -> None:
        self._jobs.clear()
        self._json.clear()

    def __len__(self) -> int:
        return len(self._jobs)
