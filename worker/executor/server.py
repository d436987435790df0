"""The executor's side of the pipe: one reader, one task per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable

from worker.child import Status
from worker.config import ExecutorConfig, default_state_dir
from worker.errors import RequestExpired, WorkerError
from worker.executor import identity, isolation
from worker.executor.cgroups import CgroupTree
from worker.executor.controllers import Controllers
from worker.executor.core import Executor
from worker.executor.job import Job
from worker.executor.launcher import Spawner
from worker.executor.sweep import sweep_dead_trees
from worker.protocol import (
    DeleteJobs,
    ErrorReply,
    FindJob,
    GetStats,
    GetStatus,
    JobCreated,
    JobInfo,
    JobList,
    JobsDeleted,
    JobsForgotten,
    JobSnapshot,
    KillJob,
    ListJobs,
    Outbox,
    OutputChunk,
    Ping,
    Pong,
    ProtocolError,
    ReadOutput,
    Reply,
    Request,
    RunJob,
    Stats,
    StdinWritten,
    WaitJob,
    WatchOutput,
    WriteStdin,
    read_message,
)
from worker.resources import DEMO_USERS, demo_file

REPLIES = (
    JobCreated,
    JobInfo,
    OutputChunk,
    JobList,
    StdinWritten,
    JobsDeleted,
    Pong,
    Stats,
    ErrorReply,
    JobsForgotten,
)

log = logging.getLogger("worker.executor")


# Only the supervisor stops us (SIGTERM, or the kernel's on its death); the
# Ctrl-C and hangup that reach the whole process group are its to handle.
STOP_SIGNALS = (signal.SIGTERM,)


async def serve(
    sock: socket.socket,
    config: ExecutorConfig,
    status: Status,
    tracking: str,
    *,
    adopt_orphans: bool = False,
    cgroups: CgroupTree | None = None,
) -> None:
    """Answer requests until the API hangs up or a stop signal arrives; then
    kill every job and return. ``tracking`` says how job processes are found
    (a cgroup each, or not), for the start-up line."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    executor, summary = await _executor(config, status, tracking, adopt_orphans, cgroups)

    def on_stop_signal(_signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(stop.set)

    # A plain handler, not the loop's: the loop learns of signals through a
    # socket that a storm of SIGCHLD (thousands of jobs ending) can fill,
    # and then a SIGTERM would be lost.
    previous = {signum: signal.signal(signum, on_stop_signal) for signum in STOP_SIGNALS}
    # A full wakeup socket only means SIGCHLDs were coalesced, which the
    # reaper handles; don't print a warning for each.
    signal.set_wakeup_fd(signal.set_wakeup_fd(-1), warn_on_full_buffer=False)
    reader, writer = await asyncio.open_connection(sock=sock)
    outbox = Outbox(writer)
    executor.on_forgotten = _notifier(outbox)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(request: Request) -> None:
        reply = await handle(executor, request)
        # The API may be gone by now (it is stopping, or died): then nobody
        # wants the reply, and the stop that follows takes care of the rest.
        with contextlib.suppress(ConnectionError):
            outbox.send(reply)
            await outbox.drain()

    async def read_requests() -> None:
        while True:
            try:
                request = await read_message(reader)
            except (ProtocolError, ConnectionError) as exc:
                log.error("executor pipe broken: %s", exc)
                return
            if request is None:
                return
            if not isinstance(request, REPLIES):  # a request, not a stray reply
                task = asyncio.create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    # In the background: what dead servers left must not delay our start.
    sweeping = asyncio.create_task(sweep_dead_trees(config.kill_grace)) if cgroups else None
    reading = asyncio.create_task(read_requests())
    status.ready(summary)
    log.info("executor ready, %s", summary, extra={"event": "ready", "tracking": tracking})
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    # No new request is read once stopping; runs already read are refused.
    reading.cancel()
    if sweeping is not None:
        await asyncio.gather(sweeping, return_exceptions=True)
    await executor.shutdown()
    for task in (stopping, *tasks):
        task.cancel()
    writer.close()
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    log.info("executor stopped: every job is gone", extra={"event": "stopped"})


async def _executor(
    config: ExecutorConfig,
    status: Status,
    tracking: str,
    adopt_orphans: bool,
    cgroups: CgroupTree | None,
) -> tuple[Executor, str]:
    """The executor, and what it says of itself in the start-up line; a
    configuration it cannot run with is told to the supervisor, and we exit."""
    spawner = Spawner.start()
    try:
        host = await isolation.detect(spawner, config.namespaces)
        users_file = config.users_file or demo_file(DEMO_USERS)
        state_dir = config.state_dir or default_state_dir()
        identities = identity.prepare(users_file, state_dir, config.uid_range)
    except WorkerError as exc:
        spawner.close()
        status.failed(exc.message)
        raise SystemExit(1) from None
    for missing in host.missing:
        log.warning("isolation not applied: %s", missing, extra={"event": "isolation_missing"})
    controllers = Controllers.detect(cgroups, config.controllers) if config.use_cgroups else None
    executor = Executor(
        config,
        spawner=spawner,
        identities=identities,
        host=host,
        adopt_orphans=adopt_orphans,
        cgroups=cgroups,
        controllers=controllers,
    )
    limits = controllers.describe() if controllers else "limits: none (--no-cgroups)"
    return executor, f"{host.describe(tracking)}; {limits}; {spawner.describe()}"


def _notifier(outbox: Outbox) -> Callable[[tuple[int, ...]], None]:
    """Forgotten jobs, told to the API at once: ahead of the reply to the
    request that deleted them, and after every reply built before."""

    def tell(job_ids: tuple[int, ...]) -> None:
        with contextlib.suppress(ConnectionError):
            outbox.send(JobsForgotten(job_ids))

    return tell


async def handle(executor: Executor, request: Request) -> Reply:
    rid = request.request_id
    try:
        _check_deadline(request)
        match request:
            case RunJob():
                job_id, existing = await executor.run(request)
                return JobCreated(rid, job_id, existing)
            case GetStatus():
                return JobInfo(rid, executor.get(request.owner, request.job_id).snapshot())
            case ReadOutput():
                job = executor.get(request.owner, request.job_id)
                return _chunk(rid, job, request.offset, request.limit)
            case WatchOutput():
                job = await executor.watch(
                    request.owner, request.job_id, request.offset, request.limit
                )
                return _chunk(rid, job, request.offset, request.limit)
            case KillJob() | FindJob() | WaitJob():
                return JobInfo(rid, await _job_info(executor, request))
            case ListJobs():
                jobs, next_before = executor.jobs(
                    request.owner, request.status, request.limit, request.before
                )
                return JobList(rid, tuple(jobs), next_before)
            case WriteStdin():
                accepted, closed = executor.write_stdin(
                    request.owner, request.job_id, request.data, request.close
                )
                return StdinWritten(rid, request.job_id, accepted, closed)
            case DeleteJobs():
                return JobsDeleted(rid, executor.delete(request.owner, request.job_ids))
            case Ping():
                return Pong(rid)
            case GetStats():
                return executor.stats(rid)
    except WorkerError as exc:
        return ErrorReply(rid, exc.code, exc.message)
    except Exception as exc:  # a bug must not take the executor and its jobs down
        log.exception("request %r failed", request)
        return ErrorReply(rid, WorkerError.code, f"internal error: {exc}")
    return ErrorReply(rid, WorkerError.code, f"unknown request {type(request).__name__}")


async def _job_info(executor: Executor, request: KillJob | FindJob | WaitJob) -> JobSnapshot:
    match request:
        case KillJob(signal=int(sig)):
            return await executor.send_signal(request.owner, request.job_id, sig)
        case KillJob():
            return await executor.kill(request.owner, request.job_id, request.force)
        case FindJob():
            return executor.find(request.owner, request.name).snapshot()
        case WaitJob():
            job = await executor.wait(request.owner, request.job_id, request.timeout)
            return job.snapshot()


def _check_deadline(request: Request) -> None:
    deadline = getattr(request, "deadline", 0.0)
    if deadline and time.monotonic() > deadline:
        late = time.monotonic() - deadline
        log.warning(
            "refused a %s request %.1f s past its deadline: the executor was stalled "
            "and the API had given up on it",
            type(request).__name__,
            late,
        )
        raise RequestExpired(
            f"the request came {late:.1f} s after its deadline (the executor was "
            "stalled); nothing was done"
        )


def _chunk(request_id: int, job: Job, offset: int, limit: int) -> OutputChunk:
    where, data = job.output.read(offset, limit)
    return OutputChunk(
        request_id,
        job.id,
        where,
        data,
        job.output.size,
        job.status,
        eof=job.output_fd is None,
        dropped=job.output.start,
        evicted=job.output_evicted,
    )
