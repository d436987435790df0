"""The client actions: run, status, out, wait, kill, list, send, health.

Each uses as few requests as it can: one, except `list` past 1,000 jobs,
`out --json` past 1 MiB, `wait` of several jobs, and Ctrl-C in `run -w`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from worker.cli import render
from worker.cli.client import ApiClient
from worker.cli.environment import Environment
from worker.cli.exit_status import ExitStatus, exit_status_for
from worker.cli.http11 import Headers
from worker.config import ClientConfig
from worker.errors import ApiError


class Call:
    """One client action: what it was asked, and what it has to do it."""

    __slots__ = ("args", "client", "env", "json")

    def __init__(self, client: ApiClient, args: Any, env: Environment, json: bool) -> None:
        self.client = client
        self.args = args  # an argparse.Namespace
        self.env = env
        self.json = json


def client_command(args: argparse.Namespace, config: ClientConfig, env: Environment) -> int:
    trace = _tracer(env) if env.environ.get("WORKER_DEBUG") else None
    client = ApiClient(config, trace)
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
        return handlers[args.action](Call(client, args, env, config.json))
    finally:
        client.close()


def _tracer(env: Environment) -> Callable[[str, str, int], None]:
    def trace(method: str, path: str, status: int) -> None:
        env.stderr.write(f"worker: {method} {path} -> {status}\n")

    return trace


def _run(call: Call) -> int:
    args, env = call.args, call.env
    body: dict[str, Any] = {"command": args.command, "args": list(args.args)}
    if args.timeout is not None:
        body["timeout"] = args.timeout
    passed = {}
    for name, given in args.env:
        # KEY alone: the caller's own, if set (as docker does).
        value = env.environ.get(name) if given is None else given
        if value is not None:
            passed[name] = value
    if passed:
        body["env"] = passed
    if args.cwd is not None:
        body["cwd"] = os.path.normpath(os.path.join(env.directory(), args.cwd))
    if args.network is not None:
        body["network"] = args.network
    if args.name is not None:
        body["name"] = args.name
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
    if limits:
        body["limits"] = limits
    # One key for this run, sent again on every retry: the server starts
    # the job once however often the request has to be repeated.
    key = {"Idempotency-Key": os.urandom(16).hex()}
    if args.wait:
        from worker.cli.waiting import run_and_wait

        return run_and_wait(call, body, key)
    response = call.client.request("POST", "/jobs/run", body, headers=key, retry_unavailable=True)
    job_id = int(response.json()["id"])
    if call.json:
        render.print_json(env, response.json())
    elif env.stdout_isatty:
        render.job_started(env, job_id, [args.command, *args.args], args.name)
    else:
        env.stdout.write(f"{job_id}\n")
    return ExitStatus.SUCCESS


def _status(call: Call) -> int:
    job = call.client.request("GET", f"/jobs/{call.args.job}/status").json()
    if call.json:
        render.print_json(call.env, job)
    elif call.env.stdout_isatty:
        render.status_table(call.env, job)
    else:
        render.status_plain(call.env, job)
    return ExitStatus.SUCCESS


def _out(call: Call) -> int:
    args, env, client = call.args, call.env, call.client
    path = f"/jobs/{args.job}/out"
    tail = f"&tail={args.tail}" if args.tail is not None else ""
    if args.follow:
        from worker.cli.waiting import follow

        return follow(call, f"{path}?follow=true{tail}")
    if call.json:
        # One JSON document per page, a line each, until the output (as it
        # stands: a running job's is complete only once it has ended) is read.
        query = f"?{tail[1:]}" if tail else "?offset=0"
        while True:
            page = client.request("GET", path + query).json()
            render.print_json(env, page)
            offset = page["next_offset"]
            if page["complete"] or offset >= page["size"] or offset == page["offset"]:
                return ExitStatus.SUCCESS
            query = f"?offset={offset}"
    response = client.request("GET", f"{path}?format=raw{tail}")
    if env.stdout_isatty:
        from worker.cli.waiting import job_of

        job = job_of(response.headers) or client.request("GET", f"/jobs/{args.job}/status").json()
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
    from worker.cli.waiting import exit_code_of

    first = 0
    for ref in call.args.jobs:
        job = call.client.request("GET", f"/jobs/{ref}/status?wait=true", patient=True).json()
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
    query, how = "", ""
    if args.signal:
        query, how = f"?signal={args.signal}", f"{args.signal} sent"
    elif args.force:
        query, how = "?force=true", "SIGKILL"
    headers: dict[str, str] = {}

    def progress(_status: int, told: Headers) -> None:
        after = told.value("x-kill-after", "?")
        render.note(env, f"job {args.job}: SIGTERM sent; SIGKILL in {after} s if it still runs")

    if not query and not call.json and env.stderr_isatty:
        headers["Prefer"] = "progress"
    path = f"/jobs/{args.job}/kill{query}"
    job = call.client.request(
        "PUT", path, headers=headers, on_interim=progress, patient=True
    ).json()
    if call.json:
        render.print_json(env, job)
    elif env.stdout_isatty:
        render.killed(env, job, how)
    else:
        env.stdout.write(f"{job['status']}\n")
    return ExitStatus.SUCCESS


def _list(call: Call) -> int:
    args = call.args
    query = f"status={args.only}&" if args.only else ""
    wanted = None if args.all else args.limit
    jobs: list[Any] = []
    cursor = None
    while True:
        page = min(1000, wanted - len(jobs)) if wanted is not None else 1000
        after = f"&cursor={cursor}" if cursor else ""
        reply = call.client.request("GET", f"/jobs?{query}limit={page}{after}").json()
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
    query = "?eof=true" if args.eof else ""
    response = call.client.request("POST", f"/jobs/{args.job}/stdin{query}", raw=data)
    if call.json:
        render.print_json(call.env, response.json())
    return ExitStatus.SUCCESS


def _rm(call: Call) -> int:
    """Each job in turn; a refusal (running, unknown) is said and the rest
    are removed all the same; the exit is then non-zero."""
    failed = ExitStatus.SUCCESS
    for ref in call.args.jobs:
        try:
            reply = call.client.request("DELETE", f"/jobs/{ref}").json()
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
    reply = call.client.request("DELETE", "/jobs?finished=true").json()
    if call.json:
        render.print_json(call.env, reply)
    elif call.env.stdout_isatty:
        count = len(reply["deleted"])
        render.note(call.env, f"{count} finished job{'' if count == 1 else 's'} removed")
    else:
        call.env.stdout.write("".join(f"{job_id}\n" for job_id in reply["deleted"]))
    return ExitStatus.SUCCESS


def _health(call: Call) -> int:
    response = call.client.request("GET", "/health")
    if call.json:
        render.print_json(call.env, response.json())
    else:
        call.env.stdout.write("ok\n")
    return ExitStatus.SUCCESS
