"""A list body joined from each job's JSON text is the very bytes Sanic's
``json()`` sends for the same dict."""

from __future__ import annotations

import json

import pytest
from sanic.response import json as sanic_json

from worker.api.jobjson import JSON, list_json, response, status_body, status_json
from worker.protocol import Isolation, JobSnapshot, JobStatus, Limits, Usage

JOBS = [
    JobSnapshot(
        1,
        "alice",
        JobStatus.COMPLETED,
        "/usr/bin/printf",
        ('ünï/cødé "q" \\ \n', "", "\u2028"),
        4242,
        0,
        None,
        "2024-01-01T00:00:00.000Z",
        "2024-01-01T00:00:01.500Z",
        isolation=Isolation(None, None, False, False, "host", False),
        limits=Limits(memory=1 << 30, cpus=0.25, io_weight=100),
        unapplied=(("pids", "no pids controller"), ("io_read_bps", "no io")),
        usage=Usage(1e-05, 123456789, 1),
        name="nightly/1",
        settled=True,
    ),
    JobSnapshot(2, "alice", JobStatus.RUNNING, "sleep", ("60",), 7, None, None, "t0", None),
    JobSnapshot(
        3, "alice", JobStatus.FAILED, "x", (), None, None, None, None, "t", error="cannot start"
    ),
]


@pytest.mark.parametrize("cursor", [None, "17"])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_list_body_is_what_json_would_send(count: int, cursor: str | None) -> None:
    jobs = JOBS[:count]
    expected = sanic_json({"jobs": [status_body(job) for job in jobs], "next_cursor": cursor})
    got = response(list_json((status_json(job) for job in jobs), cursor))
    assert got.body == expected.body
    assert got.content_type == expected.content_type == JSON
    assert len(json.loads(got.body or b"")["jobs"]) == count


def test_status_json_is_what_json_would_send() -> None:
    for job in JOBS:
        assert status_json(job) == sanic_json(status_body(job)).body
