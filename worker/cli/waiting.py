"""Following a job's output (`out -f`) and `run --wait`: stream, then say
(and for run -w, exit with) how the job ended.

Each is one request: the follow reply carries the job's status in its
``X-Job`` header and its final status in an ``X-Job`` trailer. Only a
reply without the trailer (the server lost its executor) costs a status
request more.
"""

from __future__ import annotations

import codecs

from worker.cli import render
from worker.cli.exit_status import ExitStatus
from worker.client.api import job_of
from worker.client.exitcode import exit_code_of
from worker.errors import ApiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from worker.cli.client_commands import Call
    from worker.client.api import JobRef, Stream

__all__ = ["exit_code_of", "follow", "job_of", "run_and_wait"]


def follow(call: Call, job_ref: JobRef, tail: int | None) -> int:
    """Print the job's output as it comes; Ctrl-C stops following only."""
    stream = call.api.follow(job_ref, tail=tail)
    job = stream.job
    if call.json and job:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty and job:
        render.output_header(call.env, job, None)
    try:
        _copy(call, stream, job)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED  # the job itself keeps running
    if call.json or call.env.stdout_isatty:
        final = stream.final()
        if call.json:
            render.print_json(call.env, final)
        else:
            render.note_finished(call.env, final)
    return ExitStatus.SUCCESS


def run_and_wait(call: Call, body: dict[str, Any], key: str) -> int:
    """Start the job and stream its output in the same request, then exit
    with the job's exit code."""
    stream = call.api.run_follow(body, key)
    job_id = int(stream.headers.value("x-job-id"))
    job = stream.job or {"id": job_id}
    if call.json:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty:
        render.note(call.env, f"job {job_id} started; Ctrl-C to stop waiting")
    try:
        _copy(call, stream, job)
    except KeyboardInterrupt:
        return _interrupted(call, job_id)
    final = stream.final()
    if call.json:
        render.print_json(call.env, final)
    elif call.env.stdout_isatty:
        render.note_finished(call.env, final)
    return exit_code_of(final)


def _copy(call: Call, stream: Stream, job: dict[str, Any] | None) -> None:
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
        call.api.kill(job_id)
    except ApiError as exc:
        if exc.http_status != 409:  # 409: it ended by itself meanwhile
            raise
    job = call.api.status(job_id)
    render.note_finished(call.env, job)
    return exit_code_of(job)
