"""The command line: actions, options and the help text."""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

from worker.config import (
    DEFAULT_HOST,
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT_MS,
)
from worker.errors import UsageError

HELP = f"""\
worker: run Linux commands as jobs on a worker server.

Usage:
  worker serve [options]       start the server (API and executor) in the foreground
  worker run CMD [ARGS...]     start a job and print its ID; does not wait for it
  worker status ID             show a job's status
  worker out ID                show a job's output (raw bytes when piped)
  worker kill ID               stop a job and every process it started
  worker certs DIR             make a new private CA and server certificate in DIR
  worker users add NAME --users FILE
                               add a user (or change a password); asks twice, no echo
                               (--password-stdin reads one line from stdin instead)
  worker help                  show this help

Client options (put them before CMD for `run`):
  --url URL      server to talk to (env WORKER_URL, default https://{DEFAULT_HOST}:{DEFAULT_PORT})
  --ca FILE      the only CA certificate to trust (env WORKER_CA, default the demo CA)
  --json         print the server's JSON reply as is
  Credentials come from WORKER_USER and WORKER_PASSWORD (default: demo user alice).

Server options (`worker serve`):
  --host HOST         address to listen on (default {DEFAULT_HOST})
  --port PORT         port to listen on (default {DEFAULT_PORT})
  --users FILE        users file of name:bcrypt-hash lines (default: the demo users)
  --cert F --key F    TLS certificate and key (default: the demo certificate)
  --kill-grace S      seconds between SIGTERM and SIGKILL on kill (default {DEFAULT_KILL_GRACE:g})
  --max-body BYTES    largest request body accepted (default {DEFAULT_MAX_BODY})
  --rate-limit-ms N   least time between two requests of one user (default
                      {DEFAULT_RATE_LIMIT_MS}; 0 turns it off)
  --max-output BYTES  output kept per job; past it the oldest bytes are dropped
                      (default {DEFAULT_MAX_OUTPUT}, 64 MiB)
  --no-cgroups        track job processes by session and descent even where a
                      cgroup per job could be made

Examples:
  worker serve
  worker run echo hello
  worker run ls -la /
  id=$(worker run sleep 60) && worker status "$id" && worker kill "$id"
  worker out 3 > out.bin
"""

CLIENT_ACTIONS = ("run", "status", "out", "kill")
ACTIONS = ("help", "serve", "certs", "users", *CLIENT_ACTIONS)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)'", message)
        if match and "ACTION" in message:
            message = f"invalid action {match.group(1)!r}"
        raise UsageError(message)


def _client_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    # Registered on the root parser and on each action so options may come
    # before or after the action; SUPPRESS keeps the action's copy from
    # overwriting a value given before it.
    default = None if defaults else argparse.SUPPRESS
    parser.add_argument("--url", default=default)
    parser.add_argument("--ca", default=default)
    parser.add_argument("--json", action="store_true", default=False if defaults else default)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds: {text!r}")
    return value


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _bytes(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return int(text)


def _milliseconds(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}")
    return int(text)


def _job_id(text: str) -> str:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"job ID must be a positive integer, not {text!r}")
    return text


def build() -> argparse.ArgumentParser:
    root = _Parser(prog="worker", add_help=False)
    _client_options(root, defaults=True)
    actions = root.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    actions.add_parser("help", add_help=False)

    run = actions.add_parser("run", add_help=False)
    _client_options(run, defaults=False)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD [ARGS]")

    for name in ("status", "out", "kill"):
        action = actions.add_parser(name, add_help=False)
        _client_options(action, defaults=False)
        action.add_argument("job_id", metavar="ID", type=_job_id)

    serve = actions.add_parser("serve", add_help=False)
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT)
    serve.add_argument("--users")
    serve.add_argument("--cert")
    serve.add_argument("--key")
    serve.add_argument("--kill-grace", type=_positive_float, default=DEFAULT_KILL_GRACE)
    serve.add_argument("--max-body", type=_bytes, default=DEFAULT_MAX_BODY)
    serve.add_argument("--rate-limit-ms", type=_milliseconds, default=DEFAULT_RATE_LIMIT_MS)
    serve.add_argument("--max-output", type=_bytes, default=DEFAULT_MAX_OUTPUT)
    serve.add_argument("--no-cgroups", action="store_true")

    users = actions.add_parser("users", add_help=False)
    user_actions = users.add_subparsers(dest="users_action", metavar="add", parser_class=_Parser)
    user_actions.required = True
    add = user_actions.add_parser("add", add_help=False)
    add.add_argument("name", metavar="NAME")
    add.add_argument("--users", required=True, metavar="FILE")
    add.add_argument("--password-stdin", action="store_true")

    certs = actions.add_parser("certs", add_help=False)
    certs.add_argument("directory", metavar="DIR")
    return root


def parse(argv: list[str]) -> argparse.Namespace:
    if not argv:
        raise UsageError("no action given")
    if argv[0] in ("-h", "--help"):
        argv = ["help"]
    args = build().parse_args(argv)
    if args.action == "run":
        # argparse keeps the job's words as given, except that it would eat a
        # `--` after CMD; one leading `--` (worker's own) is the only one dropped.
        words = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not words:
            raise UsageError("run needs a command: worker run CMD [ARGS...]")
        args.command, args.args = words[0], words[1:]
    return args
