"""The job list and times as people read them, on a made-up terminal."""

from __future__ import annotations

import datetime

import pytest

from tests.cli.mockenv import MockEnvironment
from worker.cli import times
from worker.cli.table import job_table

LONG = "a very long command line that goes on and on " * 3
JOBS = [
    {
        "id": 12345,
        "status": "running",
        "exit_code": None,
        "signal": None,
        "started_at": "2026-01-01T00:00:00Z",
        "ended_at": None,
        "command": "sh",
        "args": ["-c", LONG],
    },
    {
        "id": 7,
        "name": "build",
        "status": "failed",
        "exit_code": None,
        "signal": None,
        "started_at": None,
        "ended_at": "2026-01-01T00:00:00Z",
        "command": "echi",
        "args": ["hello"],
        "error": "echi: command not found",
    },
]


@pytest.mark.parametrize("width", [20, 40, 60, 80])
def test_a_narrow_terminal_cuts_the_command_never_the_id_or_status(width: int) -> None:
    env = MockEnvironment(width=width)
    job_table(env, JOBS)
    header, first, second = env.out.splitlines()
    assert header.split()[:2] == ["ID", "NAME"] or header.split()[:2] == ["ID", "STATUS"]
    assert first.split()[0] == "12345" and "running" in first.split()
    assert second.split()[0] == "7" and "failed" in second.split()
    assert "…" in first  # the command, cut
    assert max(len(line) for line in env.out.splitlines()) <= max(width, 30)


def test_a_pipe_gets_whole_lines() -> None:
    env = MockEnvironment(terminal=False)
    job_table(env, JOBS)
    lines = env.out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "EXIT", "STARTED", "DURATION", "COMMAND"]
    assert LONG.strip() in lines[1]
    assert "echi hello  (echi: command not found)" in lines[2]


def test_no_name_column_when_no_job_has_a_name() -> None:
    env = MockEnvironment(width=200)
    job_table(env, JOBS[:1])
    assert env.out.splitlines()[0].split()[:3] == ["ID", "STATUS", "EXIT"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.2, "just now"),
        (12, "12s ago"),
        (150, "2m ago"),
        (3 * 3600, "3h ago"),
        (2 * 86400, "2d ago"),
    ],
)
def test_relative_times(seconds: float, shown: str) -> None:
    at = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    then = (at - datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert times.ago(then, at) == shown


def test_durations() -> None:
    assert times.duration("2026-03-01T00:00:00Z", "2026-03-01T00:00:01.250Z") == "1.25s"
    assert times.duration("2026-03-01T00:00:00Z", "2026-03-01T00:02:05Z") == "2m05s"
    assert times.duration("2026-03-01T00:00:00Z", "2026-03-01T01:02:05Z") == "1h02m05s"
