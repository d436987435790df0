"""The client's typed results, built from the server's documents."""

from __future__ import annotations

import datetime

import pytest

import worker.client
from worker.client.api import _query, _ref, run_body
from worker.client.results import Job, JobList, JobStatus, Killed, Limits, Output
from worker.protocol import JobStatus as WireStatus

DOC = {
    "id": 7,
    "status": "killed",
    "exit_code": None,
    "signal": 15,
    "reason": "timeout",
    "pid": 1234,
    "command": "sleep",
    "args": ["60"],
    "started_at": "2026-11-28T20:15:50.153Z",
    "ended_at": "2026-11-28T20:16:50.000Z",
    "isolation": None,
    "limits": {"memory": 1 << 20, "pids": 8, "from_a_newer_server": 1},
    "unapplied_limits": {},
    "usage": {"cpu_seconds": 0.5, "memory_peak": None, "pids_peak": 2},
    "name": "nap",
    "error": None,
}


def test_the_status_enum_mirrors_the_protocols() -> None:
    assert [(s.name, s.value) for s in JobStatus] == [(s.name, s.value) for s in WireStatus]
    assert [s.is_final for s in JobStatus] == [s.is_final for s in WireStatus]


def test_a_job_from_its_document() -> None:
    job = Job.from_json(DOC)
    assert (job.id, job.status, job.signal, job.reason, job.name) == (
        7,
        JobStatus.KILLED,
        15,
        "timeout",
        "nap",
    )
    assert job.args == ("60",) and job.exit_status == 128 + 15 and job.is_final
    assert job.started_at == datetime.datetime(2026, 11, 28, 20, 15, 50, 153000, datetime.UTC)
    assert job.limits == Limits(memory=1 << 20, pids=8)  # what it does not know, it leaves
    assert job.usage is not None and job.usage.pids_peak == 2
    assert job.raw is DOC and "raw" not in repr(job)
    assert Job.from_json({**DOC, "pid": 1234}) == job
    with pytest.raises(AttributeError):
        job.id = 8  # type: ignore[misc]


def test_a_job_that_could_not_start() -> None:
    job = Job.from_json(
        {"id": 1, "status": "failed", "command": "nope", "error": "nope: not found"}
    )
    assert (job.started_at, job.limits, job.usage, job.exit_status) == (None, None, None, 127)


def test_pages_and_answers() -> None:
    page = JobList.from_json({"jobs": [DOC], "next_cursor": "7"})
    assert page.jobs[0].id == 7 and page.next_cursor == "7"
    out = Output.from_json(
        {
            "id": 1,
            "offset": 0,
            "output": "hi\n",
            "next_offset": 3,
            "size": 3,
            "truncated_bytes": 0,
            "evicted": False,
            "complete": True,
        }
    )
    assert (out.output, out.complete) == ("hi\n", True)
    assert Killed.from_json({"id": 1, "status": "killed", "sent": "SIGHUP"}).sent == "SIGHUP"


def test_requests_are_built_as_the_cli_built_them() -> None:
    assert _query(follow="true", tail=None, offset=None) == "?follow=true"
    assert _query(status="running", limit=3, cursor="12") == "?status=running&limit=3&cursor=12"
    assert _query(eof=None) == ""
    assert _ref("a/b") == "a%2Fb" and _ref(12) == "12"
    body = run_body(
        "sh",
        ["-c", "x"],
        env={},
        cwd=None,
        timeout=2.0,
        name=None,
        network=None,
        limits=Limits(pids=3),
    )
    assert body == {"command": "sh", "args": ["-c", "x"], "timeout": 2.0, "limits": {"pids": 3}}


def test_the_package_exports_its_names() -> None:
    for name in worker.client.__all__:
        assert getattr(worker.client, name) is not None
    with pytest.raises(AttributeError):
        _ = worker.client.Nothing  # type: ignore[attr-defined]
