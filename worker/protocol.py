"""Everything that crosses the pipe between the API and the executor.

Messages are frozen dataclasses, framed as an 8-byte length and a pickle. The
unpickler accepts only the classes defined here (and the job states of
worker/states.py), so nothing else can cross.
The reader rebuilds them as ``cls(*fields)`` would, but straight into their
slots, and may give a settled job it already holds (``Known``) as that very
snapshot: a job that can no longer change is the same whenever it is sent.
The encoding is the same on every supported Python: pickle protocol 5 is
fixed, every class here says exactly how it is rebuilt (``cls(*fields)``,
the enum by its value), and a test pins the bytes of each message type.
Every request carries a ``request_id`` chosen by the API; the reply carries the
same id, which lets many requests be in flight at once on one pipe.

This module depends on the standard library (and worker/states.py) only.
"""

from __future__ import annotations

import asyncio
import functools
import io
import operator
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Re-exported (mypy's explicit form): the job states travel in messages.
from worker.states import ACTIVE_STATES as ACTIVE_STATES  # noqa: PLC0414
from worker.states import FINAL_STATES as FINAL_STATES  # noqa: PLC0414
from worker.states import KILLABLE_STATES as KILLABLE_STATES  # noqa: PLC0414
from worker.states import JobStatus as JobStatus  # noqa: PLC0414

# A single reply never carries more output than this, so a large output is
# fetched in several round trips and neither side holds the pipe for long.
MAX_OUTPUT_CHUNK = 1 << 20
# A ``WatchOutput`` is answered within this many seconds, news or not.
WATCH_TIMEOUT = 30.0
# Far above any legitimate message; a larger length means a corrupt stream.
MAX_FRAME = 64 << 20

_HEADER = struct.Struct("!Q")
# Fixed, not HIGHEST_PROTOCOL: both ends must agree whatever Python they run.
PICKLE_PROTOCOL = 5


class _Wire:
    """Pickled as ``cls(*fields)``: much cheaper to load than the generic
    state of a frozen, slotted dataclass."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        cls = type(self)
        fields = _FIELDS.get(cls)
        if fields is None:
            fields = _FIELDS[cls] = _fields_getter(cls.__match_args__)  # type: ignore[attr-defined]
        return (cls, fields(self))


# Per message class: its fields as a tuple, read in C (a list of 100 jobs
# is thousands of fields: the executor's hot path when it answers a list).
_FIELDS: dict[type, Callable[[object], tuple[object, ...]]] = {}


def _fields_getter(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda value: (one(value),)
    return operator.attrgetter(*names)


# --- values inside messages -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits(_Wire):
    """A job's resource limits (None: none of that kind)."""

    memory: int | None = None  # bytes
    cpus: float | None = None  # cores, e.g. 0.5
    pids: int | None = None  # processes (and threads) at once
    io_read_bps: int | None = None  # on the device of the job's working directory
    io_write_bps: int | None = None
    io_weight: int | None = None  # 1-10000, relative to other jobs


@dataclass(frozen=True, slots=True)
class Usage(_Wire):
    """What a job has used, from the controllers' own counters."""

    cpu_seconds: float | None = None
    memory_peak: int | None = None  # bytes
    pids_peak: int | None = None


# --- requests (API -> executor) ---------------------------------------------


# Requests that change something carry a ``deadline`` (``time.monotonic()``,
# which is the same clock in every process of a host): the API stops waiting
# for the reply then, so the executor refuses the request once it is past,
# and a request the API gave up on never takes effect later. 0: none.


@dataclass(frozen=True, slots=True)
class RunJob(_Wire):
    request_id: int
    owner: str
    command: str
    args: tuple[str, ...]
    timeout: float | None = None  # seconds; killed (reason "timeout") past it
    env: tuple[tuple[str, str], ...] = ()  # added to the server's environment
    cwd: str | None = None
    deadline: float = 0.0
    # A retry with the same key (same owner, same request) gets the same job.
    idempotency_key: str | None = None
    network: str | None = None  # "host" or "none"; None: the server's default
    limits: Limits | None = None  # what it asks for; the server's defaults fill the rest
    name: str | None = None  # the caller's handle for it; the newest job of a name wins


@dataclass(frozen=True, slots=True)
class GetStatus(_Wire):
    request_id: int
    owner: str
    job_id: int


@dataclass(frozen=True, slots=True)
class ReadOutput(_Wire):
    request_id: int
    owner: str
    job_id: int
    offset: int = 0
    limit: int = MAX_OUTPUT_CHUNK


@dataclass(frozen=True, slots=True)
class WatchOutput(_Wire):
    """Like ``ReadOutput``, but answered only once there is something past
    ``offset`` or the job has ended: a long poll, for following live."""

    request_id: int
    owner: str
    job_id: int
    offset: int
    limit: int = MAX_OUTPUT_CHUNK


@dataclass(frozen=True, slots=True)
class KillJob(_Wire):
    """By default SIGTERM, the grace period, then SIGKILL until gone.
    ``force``: SIGKILL at once. ``signal``: only that signal, once, to every
    process of the job, answered at once (the job goes on unless it dies)."""

    request_id: int
    owner: str
    job_id: int
    deadline: float = 0.0
    signal: int | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class ListJobs(_Wire):
    """A page of the owner's jobs, newest first: up to ``limit`` with an ID
    below ``before`` (None: from the newest)."""

    request_id: int
    owner: str
    status: JobStatus | None = None
    limit: int = 100
    before: int | None = None


@dataclass(frozen=True, slots=True)
class WriteStdin(_Wire):
    request_id: int
    owner: str
    job_id: int
    data: bytes
    close: bool = False
    deadline: float = 0.0


@dataclass(frozen=True, slots=True)
class DeleteJobs(_Wire):
    """Forget finished jobs and their output: ``job_ids``, or with None all
    of the owner's finished jobs."""

    request_id: int
    owner: str
    job_ids: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class FindJob(_Wire):
    """The owner's newest job of this name (answered with ``JobInfo``)."""

    request_id: int
    owner: str
    name: str


@dataclass(frozen=True, slots=True)
class WaitJob(_Wire):
    """Answered with ``JobInfo`` once the job has ended, or after
    ``timeout`` seconds if it has not (the API asks again)."""

    request_id: int
    owner: str
    job_id: int
    timeout: float = WATCH_TIMEOUT


@dataclass(frozen=True, slots=True)
class Ping(_Wire):
    """Is the executor answering? (health checks)"""

    request_id: int


@dataclass(frozen=True, slots=True)
class GetStats(_Wire):
    """The executor's counters, for the API's ``/metrics``."""

    request_id: int


Request = (
    RunJob
    | GetStatus
    | ReadOutput
    | WatchOutput
    | KillJob
    | ListJobs
    | WriteStdin
    | DeleteJobs
    | FindJob
    | WaitJob
    | Ping
    | GetStats
)


# --- replies (executor -> API) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Isolation(_Wire):
    """What was applied to a job, as it was started."""

    uid: int | None  # None: the server's own user (single-tenant mode)
    gid: int | None
    pid_namespace: bool
    mount_namespace: bool  # its own /proc (with a PID namespace) and /tmp
    network: str  # "host", or "none": a namespace with loopback only
    cgroup: bool  # in a cgroup of its own


@dataclass(frozen=True, slots=True)
class JobSnapshot(_Wire):
    """A job's state at one moment."""

    id: int
    owner: str
    status: JobStatus
    command: str
    args: tuple[str, ...]
    pid: int | None
    exit_code: int | None
    signal: int | None
    started_at: str | None  # ISO 8601 UTC, formatted once when it happened
    ended_at: str | None
    reason: str | None = None  # why a killed job was killed: "kill", "timeout"
    isolation: Isolation | None = None  # None: it never started
    limits: Limits | None = None  # as applied
    unapplied: tuple[tuple[str, str], ...] = ()  # (limit, why) of those that could not be
    usage: Usage | None = None
    name: str | None = None
    error: str | None = None  # why it could not start, if it could not
    # Nothing of it can change any more (final, its usage read): the API may
    # keep it until told the job is forgotten.
    settled: bool = False


@dataclass(frozen=True, slots=True)
class JobCreated(_Wire):
    request_id: int
    job_id: int
    existing: bool = False  # an earlier request with the same idempotency key made it


@dataclass(frozen=True, slots=True)
class JobInfo(_Wire):
    request_id: int
    job: JobSnapshot


@dataclass(frozen=True, slots=True)
class OutputChunk(_Wire):
    """Bytes ``[offset, offset + len(data))`` of a job's output.

    ``size`` is how many bytes the job has written so far and ``status`` the
    job's status when the chunk was taken. ``eof`` says the output is closed:
    no byte can follow. A final status alone does not say that, since a
    process the job left behind may still write. ``dropped`` is how many of
    the oldest bytes the output cap has discarded; a read from before that
    offset starts there (``offset`` says where the data really starts).
    """

    request_id: int
    job_id: int
    offset: int
    data: bytes
    size: int
    status: JobStatus
    eof: bool
    dropped: int = 0
    evicted: bool = False  # its output was dropped to keep the server's memory budget


@dataclass(frozen=True, slots=True)
class JobList(_Wire):
    request_id: int
    jobs: tuple[JobSnapshot, ...]
    next_before: int | None = None  # where the next page starts; None: no more


@dataclass(frozen=True, slots=True)
class StdinWritten(_Wire):
    request_id: int
    job_id: int
    accepted: int
    closed: bool


@dataclass(frozen=True, slots=True)
class ErrorReply(_Wire):
    """A request that failed; ``code`` is a stable ``WorkerError`` code."""

    request_id: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class JobsDeleted(_Wire):
    request_id: int
    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pong(_Wire):
    request_id: int


@dataclass(frozen=True, slots=True)
class JobsForgotten(_Wire):
    """A notice, not a reply: these jobs are gone (deleted, or past their
    retention). Sent after every reply that could show them."""

    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Stats(_Wire):
    """Counters since the executor started (they only grow) and gauges (now).

    Plain numbers and (label, ..., value) tuples: the API makes metrics of
    them. Every label comes from a fixed set, except users, who are the
    users file's."""

    request_id: int
    jobs_started: int
    jobs_ended: tuple[tuple[str, str, int], ...]  # (status, reason, count)
    running: tuple[tuple[str, int], ...]  # (user, jobs running now)
    kills: tuple[tuple[str, int], ...]  # (reason, kills started)
    output_bytes: int  # written by jobs
    dropped_cap: int  # of those, dropped past a job's own cap
    dropped_budget: int  # dropped to keep the output budget
    output_kept: int  # held now


Reply = (
    JobCreated
    | JobInfo
    | OutputChunk
    | JobList
    | StdinWritten
    | JobsDeleted
    | Pong
    | Stats
    | ErrorReply
    | JobsForgotten
)
Message = Request | Reply

_ALLOWED = frozenset(
    cls.__name__
    for cls in (
        JobStatus,
        RunJob,
        GetStatus,
        ReadOutput,
        WatchOutput,
        KillJob,
        ListJobs,
        WriteStdin,
        DeleteJobs,
        FindJob,
        WaitJob,
        Ping,
        GetStats,
        Limits,
        Usage,
        Isolation,
        JobSnapshot,
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
)


def _builder(cls: type) -> Callable[..., Any]:
    """``cls(*fields)`` without the frozen dataclass's ``__init__``, which
    sets each field through ``object.__setattr__``: the fields go straight
    into the slots, twice as fast (a list reply rebuilds a hundred jobs).
    Made from source, as dataclasses make ``__init__``: a loop over the
    slots would cost nearly as much as that ``__init__``. A tuple of another
    length than the fields (never sent) goes to ``cls`` to say what is wrong."""
    names: tuple[str, ...] = cls.__match_args__  # type: ignore[attr-defined]
    values = ", ".join(f"v{i}" for i in range(len(names)))
    source = "\n    ".join(
        [
            "def build(*fields):",
            f"if len(fields) != {len(names)}:",
            "    return cls(*fields)",
            f"{values}, = fields",
            "made = new(cls)",
            *(f"set{i}(made, v{i})" for i in range(len(names))),
            "return made",
        ]
    )
    scope: dict[str, object] = {"cls": cls, "new": object.__new__}
    scope.update((f"set{i}", cls.__dict__[name].__set__) for i, name in enumerate(names))
    exec(source, scope)  # noqa: S102 (our own field names only)
    return scope["build"]  # type: ignore[return-value]


_BUILDERS: dict[str, Callable[..., Any]] = {
    name: _builder(cls)
    for name, cls in list(globals().items())
    if name in _ALLOWED and isinstance(cls, type) and issubclass(cls, _Wire)
}
_BUILD_SNAPSHOT = _BUILDERS["JobSnapshot"]
_SNAPSHOT_FIELDS = len(JobSnapshot.__match_args__)


class ProtocolError(Exception):
    """The byte stream on the pipe is not a valid message sequence."""


# A settled job the reader already holds, by ID (None: not held). Its
# snapshot cannot have changed, and an ID never names another job.
Known = Callable[[int], JobSnapshot | None]


class _Unpickler(pickle.Unpickler):
    def __init__(self, payload: bytes, known: Known | None) -> None:
        super().__init__(io.BytesIO(payload))
        self._known = known

    def find_class(self, module: str, name: str) -> Callable[..., object]:
        if module == __name__ and name in _ALLOWED:
            if name == "JobSnapshot" and self._known is not None:
                # Not a method of self: the unpickler's memo keeps what this
                # returns, and a cycle through it would wait for the GC.
                return functools.partial(_snapshot, self._known)
            return _BUILDERS.get(name) or globals()[name]
        if (module, name) == (JobStatus.__module__, "JobStatus"):
            return JobStatus
        raise ProtocolError(f"refusing to unpickle {module}.{name}")


def _snapshot(known: Known, *fields: Any) -> JobSnapshot:
    """A settled job already held is that very snapshot, not a copy."""
    if len(fields) == _SNAPSHOT_FIELDS and fields[-1] is True:
        held = known(fields[0])
        if held is not None and held.owner == fields[1]:
            return held
    built: JobSnapshot = _BUILD_SNAPSHOT(*fields)
    return built


def encode(message: Message) -> bytes:
    payload = pickle.dumps(message, protocol=PICKLE_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def decode(payload: bytes, known: Known | None = None) -> Message:
    try:
        message = _Unpickler(payload, known).load()
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"undecodable message: {exc}") from exc
    if type(message).__name__ not in _ALLOWED or isinstance(
        message, (JobStatus, JobSnapshot, Isolation, Limits, Usage)
    ):
        raise ProtocolError(f"not a message: {type(message).__name__}")
    return message  # type: ignore[no-any-return]


async def read_message(reader: asyncio.StreamReader, known: Known | None = None) -> Message | None:
    """Read one framed message; ``None`` on a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("stream ended inside a frame header") from exc
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is larger than {MAX_FRAME}")
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("stream ended inside a frame") from exc
    return decode(payload, known)


class Outbox:
    """Messages sent during one turn of the event loop leave in one write.

    Under load many requests (or replies) are produced per turn; one write
    each would cost a system call each.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._frames: list[bytes] = []
        self._scheduled = False

    def send(self, message: Message) -> None:
        self._frames.append(encode(message))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        frames, self._frames = self._frames, []
        if not self._writer.is_closing():
            self._writer.write(b"".join(frames))

    async def drain(self) -> None:
        """Wait while the peer is behind (the pipe's buffer is full)."""
        await self._writer.drain()
