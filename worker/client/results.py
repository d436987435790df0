"""What ``Client`` returns: frozen dataclasses built from the server's JSON.

Each keeps the document it was built from in ``raw`` (not compared, not
shown), so a field a newer server adds is not lost. ``JobStatus`` mirrors
``worker.protocol.JobStatus`` (a test holds them equal) rather than import
it: the protocol module brings asyncio and pickle with it.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.client.exitcode import exit_code_of

Document = Mapping[str, Any]


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_final(self) -> bool:
        return self is not JobStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Limits:
    """A job's resource limits (None: none of that kind)."""

    memory: int | None = None  # bytes
    cpus: float | None = None  # cores, e.g. 0.5
    pids: int | None = None
    io_read_bps: int | None = None
    io_write_bps: int | None = None
    io_weight: int | None = None  # 1-10000

    def to_json(self) -> dict[str, Any]:
        return {
            name: value
            for name in ("memory", "cpus", "pids", "io_read_bps", "io_write_bps", "io_weight")
            if (value := getattr(self, name)) is not None
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """What a job has used, from its cgroup's counters (None: not known)."""

    cpu_seconds: float | None = None
    memory_peak: int | None = None  # bytes
    pids_peak: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    status: JobStatus
    command: str
    args: tuple[str, ...] = ()
    exit_code: int | None = None
    signal: int | None = None  # the signal that ended it
    reason: str | None = None  # e.g. "timeout", "signal"
    pid: int | None = None
    started_at: datetime.datetime | None = None
    ended_at: datetime.datetime | None = None
    name: str | None = None
    error: str | None = None  # why it could not start, if it could not
    limits: Limits | None = None
    usage: Usage | None = None
    raw: Document = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def exit_status(self) -> int:
        """Its end as a shell gives it: the exit code, 128+N after signal N,
        127 if the command could not start (`worker wait` exits with it)."""
        return exit_code_of(
            {"status": self.status, "exit_code": self.exit_code, "signal": self.signal}
        )

    @classmethod
    def from_json(cls, doc: Document) -> Job:
        limits, usage = doc.get("limits"), doc.get("usage")
        return cls(
            id=int(doc["id"]),
            status=JobStatus(doc["status"]),
            command=str(doc.get("command", "")),
            args=tuple(doc.get("args") or ()),
            exit_code=doc.get("exit_code"),
            signal=doc.get("signal"),
            reason=doc.get("reason"),
            pid=doc.get("pid"),
            started_at=_time(doc.get("started_at")),
            ended_at=_time(doc.get("ended_at")),
            name=doc.get("name"),
            error=doc.get("error"),
            limits=Limits(**_known(Limits, limits)) if isinstance(limits, dict) else None,
            usage=Usage(**_known(Usage, usage)) if isinstance(usage, dict) else None,
            raw=doc,
        )


@dataclass(frozen=True, slots=True)
class JobList:
    """One page of jobs, newest first; ``next_cursor`` asks for the next."""

    jobs: tuple[Job, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, doc: Document) -> JobList:
        jobs = tuple(Job.from_json(job) for job in doc["jobs"])
        return cls(jobs, doc.get("next_cursor"))


@dataclass(frozen=True, slots=True)
class Output:
    """One page of a job's output as text (invalid UTF-8 as U+FFFD).
    ``next_offset`` is where the next page starts; ``complete``: no byte
    can follow. ``truncated_bytes``: the oldest bytes the output cap dropped."""

    id: int
    offset: int
    output: str
    next_offset: int
    size: int
    truncated_bytes: int
    evicted: bool
    complete: bool

    @classmethod
    def from_json(cls, doc: Document) -> Output:
        return cls(
            id=int(doc["id"]),
            offset=int(doc["offset"]),
            output=str(doc["output"]),
            next_offset=int(doc["next_offset"]),
            size=int(doc["size"]),
            truncated_bytes=int(doc.get("truncated_bytes", 0)),
            evicted=bool(doc.get("evicted", False)),
            complete=bool(doc["complete"]),
        )


@dataclass(frozen=True, slots=True)
class RawOutput:
    """A job's output as bytes, as it stood when read, and the job then."""

    data: bytes
    job: Job | None
    truncated_bytes: int


@dataclass(frozen=True, slots=True)
class Killed:
    """A kill's answer: the job's status once every process is gone, or
    (one signal sent) once that was sent; ``sent`` names that signal."""

    id: int
    status: JobStatus
    sent: str | None = None

    @classmethod
    def from_json(cls, doc: Document) -> Killed:
        return cls(int(doc["id"]), JobStatus(doc["status"]), doc.get("sent"))


@dataclass(frozen=True, slots=True)
class Sent:
    """How many bytes the job's stdin took, and whether it is now closed."""

    id: int
    accepted: int
    closed: bool

    @classmethod
    def from_json(cls, doc: Document) -> Sent:
        return cls(int(doc["id"]), int(doc["accepted"]), bool(doc["closed"]))


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _known(cls: type, doc: Document) -> dict[str, Any]:
    """The fields ``cls`` has (a newer server may send more)."""
    names: tuple[str, ...] = cls.__match_args__  # type: ignore[attr-defined]
    return {name: doc[name] for name in names if name in doc}
