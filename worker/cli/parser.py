"""The command line: actions, options and the help text."""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

from worker.cli import argtypes as types
from worker.config import (
    DEFAULT_BODY_GRACE,
    DEFAULT_EXECUTOR_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MAX_CONNECTIONS_PER_USER,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MIN_BODY_RATE,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT_MS,
    DEFAULT_UID_RANGE,
    NETWORKS,
)
from worker.errors import UsageError

HELP = f"""\
worker: run Linux commands as jobs on a worker server.

Usage:
  worker serve [options]       start the server (API and executor) in the foreground
  worker run [run options] CMD [ARGS...]
                               start a job and print its ID; does not wait for it
  worker status ID             show a job's status
  worker out [-f] ID           show a job's output (raw bytes when piped);
                               -f follows it live until the job ends (Ctrl-C stops)
  worker kill ID               stop a job and every process it started
  worker list [--running|--completed|--failed|--killed] [--limit N|--all]
                               your jobs, newest first (the newest 100 by default)
  worker send ID TEXT [-n]     write TEXT and a newline (not with -n) to a job's stdin
  worker send ID --eof         close a job's stdin (TEXT may come too)
  worker health                exit 0 if the server and its executor answer (no credentials)
  worker certs DIR             make a new private CA and server certificate in DIR
  worker users add NAME --users FILE [--account ACCOUNT]
                               add a user (or change a password); asks twice, no echo
                               (--password-stdin reads one line from stdin instead);
                               --account: run their jobs as this existing Unix account
  worker help                  show this help

Run options (before CMD):
  -w, --wait             stream the job's output and exit with its exit code
                         (128+signal if it was killed); Ctrl-C asks: kill or detach
  --kill-on-interrupt    with --wait: Ctrl-C kills the job without asking
  --timeout DURATION     kill the job after this long (30s, 5m, 1h30m)
  -e, --env KEY=VALUE    add to the job's environment (repeatable)
  --cwd DIR              run the job in DIR (default: your own directory on the server)
  --network none|host    none: no network but loopback (default: the server's choice)

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
  --state-dir DIR     each user's private directory (their jobs' default working
                      directory) and the uids allocated to them (default
                      /var/lib/worker as root, else ~/.local/state/worker)
  --uid-range A-B     uids for users' jobs when root (default
                      {DEFAULT_UID_RANGE[0]}-{DEFAULT_UID_RANGE[1]}, which no account may use)
  --no-namespaces     no PID and mount namespace per job, even where root could
  --network host|none a job's network unless it asks (default host); none: a
                      network namespace with loopback only
  --executor-timeout S  how long the API waits for the executor before it answers
                      503 "try again" (default {DEFAULT_EXECUTOR_TIMEOUT:g}); a request
                      it gave up on never takes effect later
  --max-connections N open connections at most (default {DEFAULT_MAX_CONNECTIONS}); past it the
                      oldest one not logged in is closed to make room
  --max-connections-per-peer N
                      the same, for each client address (default {DEFAULT_MAX_CONNECTIONS_PER_PEER})
  --max-connections-per-user N
                      connections one logged-in user may hold; beyond, a
                      request gets 429 (default {DEFAULT_MAX_CONNECTIONS_PER_USER})
  --handshake-timeout S
                      seconds from connect to the end of the TLS handshake
                      (default {DEFAULT_HANDSHAKE_TIMEOUT:g})
  --header-timeout S  seconds for a request's headers to arrive: from connect
                      for the first request, from its first byte for later
                      ones (default {DEFAULT_HEADER_TIMEOUT:g})
  --min-body-rate BYTES
                      least speed of a request body, in bytes/s, after its first
                      {DEFAULT_BODY_GRACE:g} seconds (default {DEFAULT_MIN_BODY_RATE})

Examples:
  worker serve
  worker run echo hello
  worker run ls -la /
  id=$(worker run sleep 60) && worker status "$id" && worker kill "$id"
  worker out 3 > out.bin
  worker run -w --timeout 10m make test && echo passed
  worker run sh -c 'read name; echo hello $name' && worker send 5 ann
"""

CLIENT_ACTIONS = ("run", "status", "out", "kill", "list", "send", "health")
STATUSES = ("running", "completed", "failed", "killed")
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


def _serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=types.port, default=DEFAULT_PORT)
    serve.add_argument("--users")
    serve.add_argument("--cert")
    serve.add_argument("--key")
    serve.add_argument("--kill-grace", type=types.positive_float, default=DEFAULT_KILL_GRACE)
    serve.add_argument("--max-body", type=types.byte_count, default=DEFAULT_MAX_BODY)
    serve.add_argument("--rate-limit-ms", type=types.milliseconds, default=DEFAULT_RATE_LIMIT_MS)
    serve.add_argument("--max-output", type=types.byte_count, default=DEFAULT_MAX_OUTPUT)
    serve.add_argument("--no-cgroups", action="store_true")
    serve.add_argument("--state-dir", metavar="DIR")
    serve.add_argument("--uid-range", type=types.uid_range, default=DEFAULT_UID_RANGE)
    serve.add_argument("--no-namespaces", action="store_true")
    serve.add_argument("--network", choices=NETWORKS, default="host")
    serve.add_argument("--executor-timeout", type=types.duration, default=DEFAULT_EXECUTOR_TIMEOUT)
    serve.add_argument("--max-connections", type=types.count, default=DEFAULT_MAX_CONNECTIONS)
    serve.add_argument(
        "--max-connections-per-user", type=types.count, default=DEFAULT_MAX_CONNECTIONS_PER_USER
    )
    serve.add_argument(
        "--max-connections-per-peer", type=types.count, default=DEFAULT_MAX_CONNECTIONS_PER_PEER
    )
    serve.add_argument(
        "--handshake-timeout", type=types.duration, default=DEFAULT_HANDSHAKE_TIMEOUT
    )
    serve.add_argument("--header-timeout", type=types.duration, default=DEFAULT_HEADER_TIMEOUT)
    serve.add_argument("--min-body-rate", type=types.byte_count, default=DEFAULT_MIN_BODY_RATE)


def build() -> argparse.ArgumentParser:
    root = _Parser(prog="worker", add_help=False)
    _client_options(root, defaults=True)
    actions = root.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    actions.add_parser("help", add_help=False)

    run = actions.add_parser("run", add_help=False)
    _client_options(run, defaults=False)
    run.add_argument("-w", "--wait", action="store_true")
    run.add_argument("--kill-on-interrupt", action="store_true")
    run.add_argument("--timeout", type=types.duration)
    run.add_argument("-e", "--env", type=types.env_pair, action="append", default=[])
    run.add_argument("--cwd")
    run.add_argument("--network", choices=NETWORKS)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD [ARGS]")

    for name in ("status", "out", "kill", "send"):
        action = actions.add_parser(name, add_help=False)
        _client_options(action, defaults=False)
        action.add_argument("job_id", metavar="ID", type=types.job_id)
    out = actions.choices["out"]
    out.add_argument("-f", "--follow", action="store_true")
    send = actions.choices["send"]
    send.add_argument("text", metavar="TEXT", nargs="?")
    send.add_argument("-n", dest="newline", action="store_false")
    send.add_argument("--eof", action="store_true")

    listing = actions.add_parser("list", add_help=False)
    _client_options(listing, defaults=False)
    only = listing.add_mutually_exclusive_group()
    for status in STATUSES:
        only.add_argument(f"--{status}", dest="only", action="store_const", const=status)
    listing.add_argument("--limit", type=types.count, default=100)
    listing.add_argument("--all", action="store_true")

    health = actions.add_parser("health", add_help=False)
    _client_options(health, defaults=False)

    _serve_options(actions.add_parser("serve", add_help=False))

    users = actions.add_parser("users", add_help=False)
    user_actions = users.add_subparsers(dest="users_action", metavar="add", parser_class=_Parser)
    user_actions.required = True
    add = user_actions.add_parser("add", add_help=False)
    add.add_argument("name", metavar="NAME")
    add.add_argument("--users", required=True, metavar="FILE")
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--account", metavar="ACCOUNT")

    certs = actions.add_parser("certs", add_help=False)
    certs.add_argument("directory", metavar="DIR")
    return root


def parse(argv: list[str]) -> argparse.Namespace:
    if not argv:
        raise UsageError("no action given")
    if argv[0] in ("-h", "--help"):
        argv = ["help"]
    args, extra = build().parse_known_args(argv)
    # argparse gives out optional positionals before it sees later options:
    # `send 3 -n TEXT` leaves TEXT over.
    if args.action == "send" and args.text is None and len(extra) == 1:
        args.text = extra.pop()
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
    if args.action == "run":
        # argparse keeps the job's words as given, except that it would eat a
        # `--` after CMD; one leading `--` (worker's own) is the only one dropped.
        words = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not words:
            raise UsageError("run needs a command: worker run CMD [ARGS...]")
        args.command, args.args = words[0], words[1:]
    if args.action == "send" and args.text is None and not args.eof:
        raise UsageError("send needs TEXT or --eof: worker send ID TEXT")
    return args
