"""`worker`: the one command for the server, the client and the container."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from worker.cli.exit_status import ExitStatus, exit_status_for
from worker.cli.parser import CLIENT_ACTIONS, HELP, parse
from worker.config import DEFAULT_URL, ClientConfig
from worker.errors import UsageError, WorkerError
from worker.resources import DEMO_CA, demo_path

DEMO_USER = ("alice", "wonderland")


def main(argv: list[str] | None = None) -> NoReturn:
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: list[str]) -> int:
    try:
        return _dispatch(argv)
    except UsageError as exc:
        sys.stderr.write(f"Client error: {exc.message}\n\n{HELP}")
        return ExitStatus.USAGE
    except WorkerError as exc:
        from worker.cli import render

        render.error(exc.message)
        return exit_status_for(exc)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`worker out 1 | head`); that is not an error.
        _silence_stdout()
        return ExitStatus.SUCCESS


def _dispatch(argv: list[str]) -> int:
    args = parse(argv)
    if args.action == "help":
        sys.stdout.write(HELP)
        return ExitStatus.SUCCESS
    if args.action == "serve":
        from worker.cli.serve_command import serve_command

        return serve_command(args)
    if args.action == "certs":
        from worker.cli.serve_command import certs_command

        return certs_command(args)
    if args.action == "users":
        from worker.cli.users_command import users_command

        return users_command(args)
    if args.action in CLIENT_ACTIONS:
        from worker.cli.client_commands import client_command

        return client_command(args, client_config(args, os.environ))
    raise UsageError(f"invalid action {args.action!r}")


def client_config(args: argparse.Namespace, env: os._Environ[str] | dict[str, str]) -> ClientConfig:
    user = env.get("WORKER_USER")
    password = env.get("WORKER_PASSWORD")
    if user is None and password is None:
        user, password = DEMO_USER
    elif user is None:
        raise UsageError("WORKER_PASSWORD is set but WORKER_USER is not")
    elif password is None:
        raise UsageError(f"WORKER_USER is {user!r} but WORKER_PASSWORD is not set")
    ca = args.ca or env.get("WORKER_CA") or demo_path(DEMO_CA)
    return ClientConfig(
        url=args.url or env.get("WORKER_URL") or DEFAULT_URL,
        ca_file=ca,
        user=user,
        password=password,
        json=bool(args.json),
    )


def _silence_stdout() -> None:
    # Python would complain again while flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
