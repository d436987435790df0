"""A job's processes, from launch until the last one is gone.

A job is started through the spawner (spawner.py) into its cgroup, as its
user, in its namespaces, and reports through its report pipe (jobinit.py).
A job's life is its main process's: when that ends, the job's status is
final, and whatever the job left running is stopped (SIGTERM, the grace
period, SIGKILL), as a container's processes end with its init. So a kill, a
timeout or a plain exit never leaves a process of the job behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import psutil

from worker.config import ExecutorConfig
from worker.executor import reports
from worker.executor.budget import OutputBudget
from worker.executor.cgroups import CgroupTree
from worker.executor.controllers import Controllers
from worker.executor.exits import ChildReaper
from worker.executor.identity import Identities
from worker.executor.interned import interned
from worker.executor.isolation import HostIsolation
from worker.executor.job import Job, Leader, now_iso
from worker.executor.jobcgroups import CgroupThread, Made
from worker.executor.jobinit import Launch
from worker.executor.killer import KILL_SETTLE, KillTarget, MembersUnknown, alive, kill_all
from worker.executor.launcher import Spawner
from worker.executor.pump import OutputPump
from worker.executor.stdin import StdinPipe
from worker.executor.targets import (
    JOB_ID_VARIABLE,
    CgroupTarget,
    NamespaceTarget,
    TreeTarget,
    children,
    descendants,
    process_of,
    through_pidfd,
)
from worker.linux import direct_children, exited, read_file
from worker.protocol import Isolation, Limits, RunJob

log = logging.getLogger("worker.executor")

# What jobs of a multi-user server get of its environment; the rest (root's
# secrets, say) stays with the server.
_KEPT = (b"LANG", b"LC_ALL", b"LC_CTYPE", b"TZ")
_PATH = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LaunchFailed(Exception):
    """The job could not start; the message is for its user."""


class Lifecycle:
    def __init__(
        self,
        config: ExecutorConfig,
        *,
        spawner: Spawner,
        identities: Identities,
        host: HostIsolation,
        budget: OutputBudget,
        cgroups: CgroupTree | None = None,
        controllers: Controllers | None = None,
        adopt_orphans: bool = False,
    ) -> None:
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._spawner = spawner
        self._identities = identities
        self._host = host
        self.cgroups = cgroups
        self.controllers = controllers
        self._cgroups = CgroupThread(cgroups, controllers)
        self._budget = budget
        self._reaper = ChildReaper(self._loop, adopt_orphans=adopt_orphans)
        self._pump = OutputPump(self._loop, budget)
        self._me = psutil.Process()
        self._leaders: set[int] = set()  # PIDs of unreaped job leaders
        self._cleanups: set[asyncio.Task[None]] = set()
        self.closing = False
        self._environ = dict(os.environb)  # the server's, read once

    # --- launch -------------------------------------------------------------

    async def launch(self, job: Job, request: RunJob, limits: Limits) -> None:
        """Start the job's process with ``limits`` and wait until its
        command runs; ``LaunchFailed`` if it could not."""
        identity = self._identities.of(job.owner)
        network = request.network or self._config.network
        namespaces = self._host.namespaces
        cwd = request.cwd if request.cwd is not None else str(identity.home)
        opened: list[int] = []
        try:
            made = await self._make_cgroups(job, limits, cwd, opened)
            stdin_r, stdin_w = _pipe(opened)
            out_r, out_w = _pipe(opened)
            report_r, report_w = _pipe(opened)
            launch = Launch(
                argv=(os.fsencode(job.command), *map(os.fsencode, job.args)),
                env=tuple(self._environment(job, request, identity.home, identity.login).items()),
                cwd=os.fsencode(cwd),
                uid=identity.uid,
                gid=identity.gid,
                pid_namespace=namespaces,
                mount_namespace=namespaces,
                network_none=network == "none",
                join=made.join,
            )
            pid, pidfd = await self._spawner.launch(launch, [stdin_r, out_w, report_w], made.fd)
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            self._drop_cgroup(job)
            raise LaunchFailed(f"{job.command}: cannot start: {exc.strerror or exc}") from exc
        for fd in (stdin_r, out_w, report_w, *(() if made.fd is None else (made.fd,))):
            os.close(fd)
        job.leader = Leader(pid, pidfd, init=launch.init)
        job.isolation = interned(
            Isolation(
                identity.uid, identity.gid, namespaces, namespaces, network, job.cgroup is not None
            )
        )
        self._leaders.add(pid)
        job.stdin = StdinPipe(self._loop, stdin_w)
        job.target = self._target(job)
        os.set_blocking(out_r, False)
        self._pump.start(job, out_r)
        started: asyncio.Future[str | None] = self._loop.create_future()
        self._read_reports(job, report_r, started)
        self._reaper.watch(pid, lambda: self._reap(job), pidfd)
        job.launching = True
        try:
            failure = await started
        finally:
            job.launching = False
        if failure is not None:
            self._gone_if_reaped(job)
            raise LaunchFailed(reports.describe(failure, job.command, launch.cwd))
        job.started_at = now_iso()
        if not launch.init:
            job.main_pid = pid
        elif job.leader.returncode is None:  # once reaped, its PID may be a stranger's
            job.main_pid = _only_child(pid)
        if job.on_start is not None:
            job.on_start(job)  # before an end that came meanwhile is told
        job.announce()  # a kill that came while it was being launched goes on
        # What happened meanwhile, now that it is known to have started.
        if job.main_ended is not None:
            self._main_ended(job, job.main_ended)
            self._gone_if_reaped(job)
        elif job.leader.returncode is not None:
            self._ended(job, leftovers=job.leader.leftovers)

    async def _make_cgroups(self, job: Job, limits: Limits, cwd: str, opened: list[int]) -> Made:
        made = await self._cgroups.make(job.id, limits, cwd)
        job.cgroup, job.controls = made.cgroup, made.controls
        job.limits, job.unapplied = interned(made.limits), interned(made.unapplied)
        opened += () if made.fd is None else (made.fd,)
        return made

    def _gone_if_reaped(self, job: Job) -> None:
        """After a launch whose leader was reaped meanwhile (its reaping
        left the rest to the launch): with nothing of the job left, and no
        kill or clean-up to do it later, its cgroups go now."""
        leader = job.leader
        if leader is None or leader.returncode is None or leader.leftovers:
            return
        if job.kill_task is None and job.cleanup is None:
            self._drop_cgroup(job)

    def _environment(
        self, job: Job, request: RunJob, home: object, login: str
    ) -> dict[bytes, bytes]:
        if self._identities.multi_user:
            environment = {name: self._environ[name] for name in _KEPT if name in self._environ}
            environment[b"PATH"] = _PATH
            environment[b"HOME"] = os.fsencode(str(home))
            environment[b"USER"] = environment[b"LOGNAME"] = login.encode()
        else:
            environment = dict(self._environ)
        for name, value in request.env:
            environment[os.fsencode(name)] = os.fsencode(value)
        environment[JOB_ID_VARIABLE.encode()] = str(job.id).encode()
        return environment

    def _drop_cgroup(self, job: Job) -> None:
        """Every process of the job is gone: read what it used, and remove
        its cgroups."""
        if job.controls is not None:
            job.final_usage = job.controls.usage()
        if job.controls is not None or job.cgroup is not None:
            self._cgroups.remove(job.controls, job.cgroup)
            job.controls = job.cgroup = None
        if job.leader is not None:
            job.leader.gone = True
        job.retire()

    def _target(self, job: Job) -> KillTarget:
        leader = job.leader
        assert leader is not None
        group = lambda: self._group_of(job)  # noqa: E731 - bound to this job
        to_init = None
        if leader.init:
            to_init = through_pidfd(leader.pidfd, reaped=lambda: leader.returncode is not None)
        if job.cgroup is not None:
            spare = leader.pid if leader.init else None
            return CgroupTarget(job.cgroup, group, spare=spare, to_init=to_init)
        # Unreaped, so the PID is still the leader's: safe to pin down.
        process = None if self._reaped_already(leader) else process_of(leader.pid)
        if to_init is not None:
            return NamespaceTarget(process, to_init)
        return TreeTarget(job.id, leader.pid, process, self._adopted, group)

    def _reaped_already(self, leader: Leader) -> bool:
        """Whether the leader ended so soon that it was reaped, among the
        orphans, before its launch was through (its exit status is kept
        for its reaping, which is due)."""
        return leader.returncode is None and self._reaper.reaped_unwatched(leader.pid, leader.pidfd)

    # --- reports --------------------------------------------------------------

    def _read_reports(self, job: Job, fd: int, started: asyncio.Future[str | None]) -> None:
        job.report_fd = fd

        def ended() -> None:  # the command runs (direct), or the init is gone
            job.report_fd = job.report_drain = None
            if not started.done():
                started.set_result(None)

        job.report_drain = reports.read_lines(
            self._loop, fd, lambda line: self._on_report(job, line, started), ended
        )

    def _on_report(self, job: Job, line: str, started: asyncio.Future[str | None]) -> None:
        kind, value = line[:1], line[1:]
        if kind == "E" and not started.done():
            started.set_result(value)
        elif kind == "S" and not started.done():
            started.set_result(None)
        elif kind == "X" and value.isdigit() and not job.status.is_final:
            returncode = os.waitstatus_to_exitcode(int(value))
            if job.launching:
                job.main_ended = returncode  # seen once the launch is through
            else:
                self._main_ended(job, returncode)

    # --- ends -----------------------------------------------------------------

    def _main_ended(self, job: Job, returncode: int) -> None:
        """The job's main process ended (its init said so): the job is over;
        the init stays until whatever else of the job is gone."""
        leftovers = self._has_leftovers(job, beside=job.leader.pid if job.leader else None)
        self._pump.drain(job)
        job.finish(returncode)
        if leftovers and job.kill_task is None and not self.closing:
            self._clean_up_after(job)

    def _reap(self, job: Job) -> None:
        leader = job.leader
        if leader is None or leader.returncode is not None or not exited(leader.pid):
            return
        # A leader still a zombie keeps its group and session IDs its own:
        # the last moment to see who else is in the job.
        leader.leftovers = not leader.init and self._has_leftovers(job)
        try:
            _, status = os.waitpid(leader.pid, 0)
            leader.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped before it was watched
            kept = self._reaper.reaped(leader.pid)
            leader.returncode = -9 if kept is None else os.waitstatus_to_exitcode(kept)
        self._leaders.discard(leader.pid)
        self._reaper.unwatch(leader.pid)
        os.close(leader.pidfd)
        if leader.init and job.report_drain is not None:
            # Its report pipe and its pidfd turn readable together; its last
            # words (how the main process ended) come before its own end.
            job.report_drain()
        if job.launching:
            return  # the launch's outcome decides what this end means
        if job.status.is_final:  # it never started, or its init has told its end
            if job.kill_task is None and job.cleanup is None:
                self._drop_cgroup(job)
            job.retire()  # a kill or clean-up over before this reaping left it to us
            return
        self._ended(job, leader.leftovers)

    def _ended(self, job: Job, leftovers: bool) -> None:
        """Our child, the job's main process, has ended and been reaped."""
        assert job.leader is not None and job.leader.returncode is not None
        self._pump.drain(job)
        job.finish(job.leader.returncode)
        if leftovers and job.kill_task is None and not self.closing:
            self._clean_up_after(job)
        elif not leftovers and job.kill_task is None:
            self._drop_cgroup(job)

    def _clean_up_after(self, job: Job) -> None:
        job.cleanup = task = asyncio.ensure_future(self._stop_leftovers(job))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _has_leftovers(self, job: Job, beside: int | None = None) -> bool:
        if job.target is None:
            return False
        try:
            return any(alive(p) for p in job.target.members() if p.pid != beside)
        except MembersUnknown:
            return True

    async def _stop_leftovers(self, job: Job) -> None:
        assert job.target is not None
        await kill_all(job.target, self._config.kill_grace)
        self._drop_cgroup(job)

    def _group_of(self, job: Job) -> int | None:
        """The job's group ID while its leader is unreaped; after that the ID
        could be reused, so it is never signalled as a group again. None in
        a PID namespace, whose init signals everything there itself."""
        leader = job.leader
        if leader is None or leader.returncode is not None or leader.init:
            return None
        if self._reaped_already(leader):
            return None
        return leader.pid  # a new session: the leader's PID is the group ID

    def _adopted(self) -> list[psutil.Process]:
        """Processes this executor adopted (orphans of jobs), with their
        descendants: its children that are neither job leaders nor the
        spawner (whose environment is the server's, which may carry a job
        ID: a server run inside a job)."""
        ours = {*self._leaders, self._spawner.process.pid}
        pids = direct_children()
        if pids is None:
            adopted = [p for p in children(self._me) if p.pid not in ours]
        else:
            adopted = [p for pid in pids if pid not in ours if (p := process_of(pid))]
        return [*adopted, *descendants(adopted)]

    # --- kill -----------------------------------------------------------------

    async def kill(self, job: Job) -> None:
        """Stop every process of the job; KillFailed-worthy if some stays."""
        assert job.target is not None
        gone = await kill_all(job.target, self._config.kill_grace)
        self._reap(job)
        if not gone or not job.ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.ended.wait(), KILL_SETTLE)
        if job.ended.is_set():
            self._drop_cgroup(job)

    def reap(self, job: Job) -> None:
        self._reap(job)

    def close(self, job: Job) -> None:
        self._pump.close(job)
        if job.report_fd is not None:
            self._loop.remove_reader(job.report_fd)
            os.close(job.report_fd)
            job.report_fd = job.report_drain = None

    async def settle(self) -> None:
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self._cgroups.idle()

    def stop(self) -> None:
        self._reaper.close()
        self._cgroups.close()


def _pipe(opened: list[int]) -> tuple[int, int]:
    read, write = os.pipe2(os.O_CLOEXEC)
    opened += (read, write)
    return read, write


def _only_child(pid: int) -> int | None:
    """The host PID of the init's child (the job's main process)."""
    try:
        found = read_file(f"/proc/{pid}/task/{pid}/children").split()
    except OSError:
        return None
    return int(found[0]) if found else None
