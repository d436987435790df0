"""The client actions: run, status, out, kill."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.cli import render
from worker.cli.client import ApiClient
from worker.cli.exit_status import ExitStatus
from worker.config import ClientConfig


def client_command(args: argparse.Namespace, config: ClientConfig) -> int:
    client = ApiClient(config)
    try:
        handler = {"run": _run, "status": _status, "out": _out, "kill": _kill}[args.action]
        return handler(client, args, config)
    finally:
        client.close()


def _print_json(body: bytes) -> None:
    sys.stdout.write(body.decode("utf-8", "replace").rstrip("\n") + "\n")


def _run(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    body: dict[str, Any] = {"command": args.command, "args": list(args.args)}
    response = client.request("POST", "/jobs/run", body)
    if config.json:
        _print_json(response.body)
    elif render.stdout_is_terminal():
        render.job_started(response.json()["id"], [args.command, *args.args])
    else:
        sys.stdout.write(f"{response.json()['id']}\n")
    return ExitStatus.SUCCESS


def _status(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    response = client.request("GET", f"/jobs/{args.job_id}/status")
    if config.json:
        _print_json(response.body)
    else:
        render.status_table(response.json())
    return ExitStatus.SUCCESS


def _out(client: ApiClient, args: argparse.Namespace, config: ClientConfig) -> int:
    if config.json:
        _print_json(client.request("GET", f"/jobs/{args.job_id}/out").body)
        return ExitStatus.SUCCESS
    if not render.stdout_is_terminal():
        render.raw(client.request("GET", f"/jobs/{args.job_id}/out?format=raw").body)
        return ExitStatus.SUCCESS
    job = client.request("GET", f"/jobs/{args.job_id}/status").json()
    data = client.request("GET", f"/jobs/{args.job_id}/out?format=raw").body
    render.output_header(job, len(data))
    render.raw(data)
    if data and not data.endswith(b"\n"):
        render.raw(b"\n")  # so the shell prompt starts on its own line
    return ExitStatus.SUCCESS


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
