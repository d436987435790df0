"""Following a job's output, and `run --wait`: stream, then exit as the job did."""

from __future__ import annotations

import signal
import sys
from typing import Any

from worker.cli import render
from worker.cli.client import ApiClient
from worker.cli.exit_status import ExitStatus
from worker.errors import ApiError


def follow(client: ApiClient, job_id: int | str) -> int:
    """Print the job's output as it comes; Ctrl-C stops following only."""
    try:
        for data in client.stream(f"/jobs/{job_id}/out?follow=true"):
            render.raw(data)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED  # the job itself keeps running
    return ExitStatus.SUCCESS


def wait_for_job(client: ApiClient, job_id: int, kill_on_interrupt: bool) -> int:
    """Stream the job's output to stdout, then exit with the job's exit code."""
    if render.stdout_is_terminal():
        render.note(f"job {job_id} started; Ctrl-C to stop waiting")
    try:
        for data in client.stream(f"/jobs/{job_id}/out?follow=true"):
            render.raw(data)
    except KeyboardInterrupt:
        return _interrupted(client, job_id, kill_on_interrupt)
    job = client.request("GET", f"/jobs/{job_id}/status").json()
    if render.stdout_is_terminal():
        render.note_finished(job)
    return exit_code_of(job)


def _interrupted(client: ApiClient, job_id: int, kill_on_interrupt: bool) -> int:
    kill = kill_on_interrupt
    if not kill and sys.stdin.isatty():
        answer = render.ask(f"kill job {job_id}? [y/N] ")
        kill = answer.strip().lower() in ("y", "yes")
    if not kill:
        render.note(f"detached; job {job_id} keeps running (`worker out -f {job_id}` follows it)")
        return ExitStatus.INTERRUPTED
    try:
        client.request("PUT", f"/jobs/{job_id}/kill")
    except ApiError as exc:
        if exc.http_status != 409:  # 409: it ended by itself meanwhile
            raise
    job = client.request("GET", f"/jobs/{job_id}/status").json()
    render.note_finished(job)
    return exit_code_of(job)


def exit_code_of(job: dict[str, Any]) -> int:
    """The job's own exit code, as a shell would give it: 128+N for signal N,
    127 when the command could not even start."""
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    if job.get("exit_code") is not None:
        code = int(job["exit_code"])
        if job.get("status") == "killed" and code == 0:
            return 128 + signal.SIGTERM  # it obeyed the kill and exited 0
        return code
    return 127
