"""A job's cgroups, made and removed on a thread of their own.

Making a job's cgroups (its v2 one, where it is tracked and born, and on v1
hosts one per hierarchy its limits need) and removing them is a run of
mkdir, write and rmdir system calls, each under the kernel's one global
cgroup lock, which its own workers also hold while they free what a removal
left. On the event loop they took a fifth of its time at full load, and a
wait for that lock stalled every request; on one thread of their own they
run beside the loop (the calls hold no GIL), in the order they were asked.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from worker.executor.cgroups import CgroupTree, JobCgroup
from worker.executor.controllers import Controllers, JobControllers
from worker.executor.limits import given
from worker.protocol import Limits

log = logging.getLogger("worker.executor")

NO_CGROUPS = "no cgroups here (or --no-cgroups)"


@dataclass(frozen=True, slots=True)
class Made:
    cgroup: JobCgroup | None
    fd: int | None  # the v2 cgroup's directory, for the job to be born in
    controls: JobControllers | None
    limits: Limits  # as applied
    unapplied: tuple[tuple[str, str], ...]  # (limit, why not)
    join: tuple[bytes, ...]  # the v1 cgroup.procs files the job joins


class CgroupThread:
    def __init__(self, cgroups: CgroupTree | None, controllers: Controllers | None) -> None:
        self.cgroups = cgroups
        self.controllers = controllers
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cgroups")
        self._closed = False

    async def make(self, job_id: int, limits: Limits, cwd: str) -> Made:
        """The job's cgroups with ``limits`` written; OSError if its v2
        cgroup could not be made (then nothing of it is left)."""
        if self._closed:
            raise OSError(errno.ESHUTDOWN, "the executor is stopping")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._make, job_id, limits, cwd)

    def _make(self, job_id: int, limits: Limits, cwd: str) -> Made:
        cgroup = fd = controls = None
        try:
            if self.cgroups is not None:
                try:
                    cgroup = self._create(job_id)
                    fd = os.open(cgroup.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError as exc:
                    raise OSError(exc.errno, f"no cgroup: {exc.strerror}") from exc
            if self.controllers is None:
                refused = tuple((name, NO_CGROUPS) for name in given(limits))
                return Made(cgroup, fd, None, Limits(), refused, ())
            controls = self.controllers.job(job_id, cgroup, limits)
            applied, refused_by = controls.apply(limits, cwd)
        except BaseException:
            if fd is not None:
                os.close(fd)
            if controls is not None:
                controls.remove()
            if cgroup is not None:
                cgroup.remove()
            raise
        return Made(cgroup, fd, controls, applied, tuple(sorted(refused_by.items())), controls.join)

    def _create(self, job_id: int) -> JobCgroup:
        assert self.cgroups is not None
        try:
            return self.cgroups.create(job_id)
        except FileNotFoundError:
            pass
        # Our tree is gone: removed by hand or by something that did not
        # check its lock. Its jobs had ended (a cgroup with processes cannot
        # be removed); make a new one rather than fail every job from now on.
        # (Its base changes on this thread: the loop reads it only at
        # shutdown, once this thread is idle.)
        vanished = self.cgroups.base
        self.cgroups.recreate()
        log.error(
            "this server's cgroup %s vanished (removed from outside); new jobs go to %s",
            vanished,
            self.cgroups.base,
        )
        return self.cgroups.create(job_id)

    def remove(self, controls: JobControllers | None, cgroup: JobCgroup | None) -> None:
        """Remove a job's (empty) cgroups, later: nothing waits for it."""
        if self._closed:  # a straggler after the shutdown: at once, then
            _remove(controls, cgroup)
        else:
            self._thread.submit(_remove, controls, cgroup)

    async def idle(self) -> None:
        """Once all that was asked before is done."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._thread, _nothing)

    def close(self) -> None:
        self._closed = True
        self._thread.shutdown(wait=True)


def _remove(controls: JobControllers | None, cgroup: JobCgroup | None) -> None:
    if controls is not None:
        controls.remove()
    if cgroup is not None:
        cgroup.remove()


def _nothing() -> None:
    pass
