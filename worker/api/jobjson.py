"""A job's status as the API shows it: as a dict, and as JSON text.

The text is made by the very function Sanic's ``json()`` response uses, so a
body assembled from these pieces is the same bytes ``json()`` would send for
the same dict; a settled job's piece never changes, and the API keeps it
(worker/api/settled.py) so that a page of a list is mostly a join.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sanic.response import HTTPResponse
from sanic.response.types import BaseHTTPResponse

from worker.protocol import Isolation, JobSnapshot, Limits, Usage

JSON = "application/json"


def status_body(job: JobSnapshot) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "reason": job.reason,
        "pid": job.pid,
        "command": job.command,
        "args": list(job.args),
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "isolation": None if job.isolation is None else isolation_body(job.isolation),
        "limits": None if job.limits is None else limits_body(job.limits),
        "unapplied_limits": dict(job.unapplied),
        "usage": None if job.usage is None else usage_body(job.usage),
        "name": job.name,
        "error": job.error,  # why it could not start, if it could not
    }


def limits_body(limits: Limits) -> dict[str, Any]:
    names = ("memory", "cpus", "pids", "io_read_bps", "io_write_bps", "io_weight")
    return {name: value for name in names if (value := getattr(limits, name)) is not None}


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "cpu_seconds": usage.cpu_seconds,
        "memory_peak": usage.memory_peak,
        "pids_peak": usage.pids_peak,
    }


def isolation_body(isolation: Isolation) -> dict[str, Any]:
    return {
        "uid": isolation.uid,
        "gid": isolation.gid,
        "pid_namespace": isolation.pid_namespace,
        "mount_namespace": isolation.mount_namespace,
        "network": isolation.network,
        "cgroup": isolation.cgroup,
    }


def dumps(value: object) -> bytes:
    """``value`` as JSON, exactly as Sanic's ``json()`` would send it."""
    text = BaseHTTPResponse._dumps(value)
    return text if isinstance(text, bytes) else text.encode()


def status_json(job: JobSnapshot) -> bytes:
    return dumps(status_body(job))


def list_json(jobs: Iterable[bytes], next_cursor: str | None) -> bytes:
    """``{"jobs": [...], "next_cursor": ...}`` from each job's JSON text."""
    return b"".join((b'{"jobs":[', b",".join(jobs), b'],"next_cursor":', dumps(next_cursor), b"}"))


def response(body: bytes) -> HTTPResponse:
    return HTTPResponse(body, content_type=JSON)
