"""Following a job's output (`out -f`) and `run --wait`: stream, then say
(and for run -w, exit with) how the job ended.

Each is one request: the follow reply carries the job's status in its
``X-Job`` header and its final status in an ``X-Job`` trailer. Only a
reply without the trailer (the server lost its executor) costs a status
request more.
"""

from __future__ import annotations

import codecs
import json
from typing import TYPE_CHECKING, Any

from worker.cli import render
from worker.cli.exit_status import ExitStatus
from worker.cli.http11 import Headers
from worker.errors import ApiError

if TYPE_CHECKING:
    from worker.cli.client import Streamed
    from worker.cli.client_commands import Call

SIGTERM = 15


def job_of(headers: Headers) -> dict[str, Any] | None:
    """The job's status that a reply (or its trailers) carries, if any."""
    text = headers.value("x-job")
    try:
        job = json.loads(text) if text else None
    except ValueError:
        return None
    return job if isinstance(job, dict) else None


def follow(call: Call, path: str) -> int:
    """Print the job's output as it comes; Ctrl-C stops following only."""
    stream = call.client.stream("GET", path)
    job = job_of(stream.headers)
    if call.json and job:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty and job:
        render.output_header(call.env, job, None)
    try:
        _copy(call, stream, job)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED  # the job itself keeps running
    if call.json or call.env.stdout_isatty:
        final = _final(call, stream, job)
        if call.json:
            render.print_json(call.env, final)
        else:
            render.note_finished(call.env, final)
    return ExitStatus.SUCCESS


def run_and_wait(call: Call, body: dict[str, Any], headers: dict[str, str]) -> int:
    """Start the job and stream its output in the same request, then exit
    with the job's exit code."""
    stream = call.client.stream(
        "POST", "/jobs/run?follow=true", body, headers=headers, retry_unavailable=True
    )
    job_id = int(stream.headers.value("x-job-id"))
    job = job_of(stream.headers) or {"id": job_id}
    if call.json:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty:
        render.note(call.env, f"job {job_id} started; Ctrl-C to stop waiting")
    try:
        _copy(call, stream, job)
    except KeyboardInterrupt:
        return _interrupted(call, job_id)
    final = _final(call, stream, job)
    if call.json:
        render.print_json(call.env, final)
    elif call.env.stdout_isatty:
        render.note_finished(call.env, final)
    return exit_code_of(final)


def _copy(call: Call, stream: Streamed, job: dict[str, Any] | None) -> None:
    if not call.json:
        for data in stream:
            call.env.write_bytes(data)
        return
    # JSON lines: the output as text (each invalid byte a U+FFFD; a
    # character split between pieces is kept whole).
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    job_id = job.get("id") if job else None
    for data in stream:
        text = decoder.decode(data)
        if text:
            render.print_json(call.env, {"id": job_id, "output": text})
    rest = decoder.decode(b"", final=True)
    if rest:
        render.print_json(call.env, {"id": job_id, "output": rest})


def _final(call: Call, stream: Streamed, job: dict[str, Any] | None) -> dict[str, Any]:
    final = job_of(stream.trailers)
    if final is None:  # no trailer: ask
        assert job is not None
        final = call.client.request("GET", f"/jobs/{job['id']}/status").json()
    return final


def _interrupted(call: Call, job_id: int) -> int:
    kill = call.args.kill_on_interrupt
    if not kill and call.env.stdin_isatty:
        answer = render.ask(call.env, f"kill job {job_id}? [y/N] ")
        kill = answer.strip().lower() in ("y", "yes")
    if not kill:
        render.note(
            call.env, f"detached; job {job_id} keeps running (`worker out -f {job_id}` follows it)"
        )
        return ExitStatus.INTERRUPTED
    try:
        call.client.request("PUT", f"/jobs/{job_id}/kill", patient=True)
    except ApiError as exc:
        if exc.http_status != 409:  # 409: it ended by itself meanwhile
            raise
    job = call.client.request("GET", f"/jobs/{job_id}/status").json()
    render.note_finished(call.env, job)
    return exit_code_of(job)


def exit_code_of(job: dict[str, Any]) -> int:
    """The job's own exit code, as a shell would give it: 128+N for signal N,
    127 when the command could not even start."""
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    if job.get("exit_code") is not None:
        code = int(job["exit_code"])
        if job.get("status") == "killed" and code == 0:
            return 128 + SIGTERM  # it obeyed the kill and exited 0
        return code
    return 127
