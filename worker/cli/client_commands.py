"""The client actions: run, status, out, wait, kill, list, send, health.

Each uses as few requests as it can: one, except `list` past 1,000 jobs,
`out --json` past 1 MiB, `wait` of several jobs, and Ctrl-C in `run -w`.
Requests go through ``worker.client.api.Api``, the request layer
``worker.client.Client`` is built on (``Client.api``): the same requests,
errors and retries, with the server's documents as they are (what `--json`
prints), and without loading the typed client at start-up.
"""

from __future__ import annotations

import os

from worker.cli import render
from worker.cli.exit_status import ExitStatus, exit_status_for
from worker.client.api import MAX_PAGE, Api, new_key, run_body
from worker.errors import ApiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from worker.cli.environment import Environment
    from worker.client.config import ClientConfig
    from worker.client.http11 import Headers


class Call:
    """One client action: what it was asked, and what it has to do it."""

    __slots__ = ("api", "args", "env", "json")

    def __init__(self, api: Api, args: Any, env: Environment, json: bool) -> None:
        self.api = api
        self.args = args  # an argparse.Namespace
        self.env = env
        self.json = json


def client_command(args: argparse.Namespace, config: ClientConfig, env: Environment) -> int:
    trace = _tracer(env) if env.environ.get("WORKER_DEBUG") else None
    api = Api.from_config(config, trace)
    handlers: dict[str, Callable[[Call], int]] = {
        "run": _run,
        "status": _status,
        "out": _out,
        "wait": _wait,
        "kill": _kill,
        "list": _list,
        "send": _send,
        "rm": _rm,
        "prune": _prune,
        "health": _health,
    }
    try:
        return handlers[args.action](Call(api, args, env, config.json))
    finally:
        api.close()


def _tracer(env: Environment) -> Callable[[str, str, int], None]:
    def trace(method: str, path: str, status: int) -> None:
        env.stderr.write(f"worker: {method} {path} -> {status}\n")

    return trace


def _run(call: Call) -> int:
    args, env = call.args, call.env
    passed = {}
    for name, given in args.env:
        # KEY alone: the caller's own, if set (as docker does).
        value = env.environ.get(name) if given is None else given
        if value is not None:
            passed[name] = value
    cwd = None
    if args.cwd is not None:
        cwd = os.path.normpath(os.path.join(env.directory(), args.cwd))
    limits = {
        key: value
        for key, value in (
            ("memory", args.memory),
            ("cpus", args.cpus),
            ("pids", args.pids_limit),
            ("io_read_bps", args.device_read_bps),
            ("io_write_bps", args.device_write_bps),
            ("io_weight", args.blkio_weight),
        )
        if value is not None
    }
    body = run_body(
        args.command,
        args.args,
        env=passed,
        cwd=cwd,
        timeout=args.timeout,
        name=args.name,
        network=args.network,
        limits=limits,
    )
    # One key for this run, sent again on every retry: the server starts
    # the job once however often the request has to be repeated.
    key = new_key()
    if args.wait:
        from worker.cli.waiting import run_and_wait

        return run_and_wait(call, body, key)
    reply = call.api.run(body, key)
    job_id = int(reply["id"])
    if call.json:
        render.print_json(env, reply)
    elif env.stdout_isatty:
        render.job_started(env, job_id, [args.command, *args.args], args.name)
    else:
        env.stdout.write(f"{job_id}\n")
    return ExitStatus.SUCCESS


def _status(call: Call) -> int:
    job = call.api.status(call.args.job)
    if call.json:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty:
        render.status_table(call.env, job)
    else:
        render.status_plain(call.env, job)
    return ExitStatus.SUCCESS


def _out(call: Call) -> int:
    args, env, api = call.args, call.env, call.api
    if args.follow:
        from worker.cli.waiting import follow

        return follow(call, args.job, args.tail)
    if call.json:
        # One JSON document per page, a line each, until the output (as it
        # stands: a running job's is complete only once it has ended) is read.
        page = api.out_page(args.job, tail=args.tail, offset=0 if args.tail is None else None)
        while True:
            render.print_json(env, page)
            offset = page["next_offset"]
            if page["complete"] or offset >= page["size"] or offset == page["offset"]:
                return ExitStatus.SUCCESS
            page = api.out_page(args.job, offset=offset)
    response = api.out_raw(args.job, tail=args.tail)
    if env.stdout_isatty:
        from worker.client.api import job_of

        job = job_of(response.headers) or api.status(args.job)
        render.output_header(env, job, len(response.body), _dropped(response.headers))
        env.write_bytes(response.body)
        if response.body and not response.body.endswith(b"\n"):
            env.write_bytes(b"\n")  # so the shell prompt starts on its own line
    else:
        env.write_bytes(response.body)
    return ExitStatus.SUCCESS


def _dropped(headers: Headers) -> int:
    value = headers.value("X-Output-Truncated-Bytes", "0")
    return int(value) if value.isdigit() else 0


def _wait(call: Call) -> int:
    """Each job's end, in the order given; the first non-zero exit code."""
    from worker.client.exitcode import exit_code_of

    first = 0
    for ref in call.args.jobs:
        job = call.api.status(ref, wait=True)
        code = exit_code_of(job)
        first = first or code
        if call.json:
            render.print_json(call.env, job)
        elif call.env.stdout_isatty:
            render.finished(call.env, job)
        else:
            call.env.stdout.write(f"{code}\n")
    return first


def _kill(call: Call) -> int:
    args, env = call.args, call.env
    how = ""
    if args.signal:
        how = f"{args.signal} sent"
    elif args.force:
        how = "SIGKILL"

    def progress(_status: int, told: Headers) -> None:
        after = told.value("x-kill-after", "?")
        render.note(env, f"job {args.job}: SIGTERM sent; SIGKILL in {after} s if it still runs")

    # Asked for only where someone reads it (a terminal, not --json).
    wanted = progress if not call.json and env.stderr_isatty else None
    job = call.api.kill(
        args.job,
        signal=args.signal or None,
        force=bool(args.force) and not args.signal,
        on_interim=wanted,
    )
    if call.json:
        render.print_json(env, job)
    elif env.stdout_isatty:
        render.killed(env, job, how)
    else:
        env.stdout.write(f"{job['status']}\n")
    return ExitStatus.SUCCESS


def _list(call: Call) -> int:
    args = call.args
    wanted = None if args.all else args.limit
    jobs: list[Any] = []
    cursor = None
    while True:
        page = min(MAX_PAGE, wanted - len(jobs)) if wanted is not None else MAX_PAGE
        reply = call.api.list(status=args.only or None, limit=page, cursor=cursor or None)
        jobs += reply["jobs"]
        cursor = reply.get("next_cursor")
        if not cursor or (wanted is not None and len(jobs) >= wanted):
            break
    if call.json:
        render.print_json(call.env, {"jobs": jobs, "next_cursor": cursor})
    else:
        from worker.cli.table import job_table

        job_table(call.env, jobs, more=bool(cursor))
    return ExitStatus.SUCCESS


def _send(call: Call) -> int:
    args = call.args
    data = b""
    if args.text is not None:
        data = args.text.encode("utf-8", "surrogateescape") + (b"\n" if args.newline else b"")
    reply = call.api.send(args.job, data, eof=bool(args.eof))
    if call.json:
        render.print_json(call.env, reply)
    return ExitStatus.SUCCESS


def _rm(call: Call) -> int:
    """Each job in turn; a refusal (running, unknown) is said and the rest
    are removed all the same; the exit is then non-zero."""
    failed = ExitStatus.SUCCESS
    for ref in call.args.jobs:
        try:
            reply = call.api.remove(ref)
        except ApiError as exc:
            if call.json:
                render.print_json(call.env, {"error": exc.message})
            else:
                render.error(call.env, exc.message)
            failed = failed or exit_status_for(exc)
            continue
        if call.json:
            render.print_json(call.env, reply)
        elif not call.env.stdout_isatty:
            call.env.stdout.write("".join(f"{job_id}\n" for job_id in reply["deleted"]))
    return failed


def _prune(call: Call) -> int:
    reply = call.api.prune()
    if call.json:
        render.print_json(call.env, reply)
    elif call.env.stdout_isatty:
        count = len(reply["deleted"])
        render.note(call.env, f"{count} finished job{'' if count == 1 else 's'} removed")
    else:
        call.env.stdout.write("".join(f"{job_id}\n" for job_id in reply["deleted"]))
    return ExitStatus.SUCCESS


def _health(call: Call) -> int:
    reply = call.api.health()
    if call.json:
        render.print_json(call.env, reply)
    else:
        call.env.stdout.write("ok\n")
    return ExitStatus.SUCCESS
