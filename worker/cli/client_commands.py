"""The client actions: run, status, out, kill, list, send."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from worker.cli import render
from worker.cli.client import ApiClient
from worker.cli.exit_status import ExitStatus
from worker.cli.waiting import follow, wait_for_job
from worker.config import ClientConfig


def client_command(args: argparse.Namespace, config: ClientConfig) -> int:
    client = ApiClient(config)
    try:
        handler = {
            "run": _run,
            "status": _status,
            "out": _out,
            "kill": _kill,
            "list": _list,
            "send": _send,
            "health": _health,
        }[args.action]
        return handler(client, args, config)
    finally:
        client.close()


def _print_json(body: bytes) -> None:
    sys.stdout.write(body.decode("utf-8", "replace").rstrip("\n") + "\n")


def _run(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    body: dict[str, Any] = {"command": args.command, "args": list(args.args)}
    if args.timeout is not None:
        body["timeout"] = args.timeout
    if args.env:
        body["env"] = dict(args.env)
    if args.cwd is not None:
        body["cwd"] = args.cwd
    if args.network is not None:
        body["network"] = args.network
    # One key for this run, sent again on every retry: the server starts
    # the job once however often the request has to be repeated.
    key = {"Idempotency-Key": os.urandom(16).hex()}
    response = client.request("POST", "/jobs/run", body, headers=key, retry_unavailable=True)
    job_id = int(response.json()["id"])
    if args.wait:
        return wait_for_job(client, job_id, kill_on_interrupt=args.kill_on_interrupt)
    if config.json:
        _print_json(response.body)
    elif render.stdout_is_terminal():
        render.job_started(job_id, [args.command, *args.args])
    else:
        sys.stdout.write(f"{job_id}\n")
    return ExitStatus.SUCCESS


def _status(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    response = client.request("GET", f"/jobs/{args.job_id}/status")
    if config.json:
        _print_json(response.body)
    elif render.stdout_is_terminal():
        render.status_table(response.json())
    else:
        render.status_plain(response.json())
    return ExitStatus.SUCCESS


def _out(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    path = f"/jobs/{args.job_id}"
    if config.json:
        # One JSON document per page, a line each, until the output (as it
        # stands: a running job's is complete only once it has ended) is read.
        offset = 0
        while True:
            page = client.request("GET", f"{path}/out?offset={offset}")
            _print_json(page.body)
            reply = page.json()
            caught_up = reply["next_offset"] >= reply["size"] or reply["next_offset"] == offset
            if reply["complete"] or caught_up:
                return ExitStatus.SUCCESS
            offset = reply["next_offset"]
    if render.stdout_is_terminal():
        job = client.request("GET", f"{path}/status").json()
        if args.follow:
            render.output_header(job, None)
            return follow(client, args.job_id)
        response = client.request("GET", f"{path}/out?format=raw")
        render.output_header(job, len(response.body), _dropped(response))
        render.raw(response.body)
        if response.body and not response.body.endswith(b"\n"):
            render.raw(b"\n")  # so the shell prompt starts on its own line
        return ExitStatus.SUCCESS
    if args.follow:
        return follow(client, args.job_id)
    render.raw(client.request("GET", f"{path}/out?format=raw").body)
    return ExitStatus.SUCCESS


def _dropped(response: Any) -> int:
    value = response.headers.value("X-Output-Truncated-Bytes", "0")
    return int(value) if value.isdigit() else 0


def _kill(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    response = client.request("PUT", f"/jobs/{args.job_id}/kill")
    if config.json:
        _print_json(response.body)
        return ExitStatus.SUCCESS
    reply = response.json()
    if render.stdout_is_terminal():
        render.killed(reply["id"], reply["status"])
    else:
        sys.stdout.write(f"{reply['status']}\n")
    return ExitStatus.SUCCESS


def _list(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    query = f"status={args.only}&" if args.only else ""
    wanted = None if args.all else args.limit
    jobs: list[Any] = []
    cursor = None
    while True:
        page = min(1000, wanted - len(jobs)) if wanted is not None else 1000
        after = f"&cursor={cursor}" if cursor else ""
        reply = client.request("GET", f"/jobs?{query}limit={page}{after}").json()
        jobs += reply["jobs"]
        cursor = reply.get("next_cursor")
        if not cursor or (wanted is not None and len(jobs) >= wanted):
            break
    if config.json:
        sys.stdout.write(json.dumps({"jobs": jobs, "next_cursor": cursor}) + "\n")
    else:
        render.job_table(jobs, more=bool(cursor))
    return ExitStatus.SUCCESS


def _send(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    data = b""
    if args.text is not None:
        data = args.text.encode("utf-8", "surrogateescape") + (b"\n" if args.newline else b"")
    query = "?eof=true" if args.eof else ""
    response = client.request("POST", f"/jobs/{args.job_id}/stdin{query}", raw=data)
    if config.json:
        _print_json(response.body)
    return ExitStatus.SUCCESS


def _health(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    response = client.request("GET", "/health")
    if config.json:
        _print_json(response.body)
    else:
        sys.stdout.write("ok\n")
    return ExitStatus.SUCCESS
