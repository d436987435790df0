"""The options of `worker serve`, with their help and defaults."""

from __future__ import annotations

import argparse

from worker.cli import argtypes as types
from worker.config import (
    DEFAULT_BODY_GRACE,
    DEFAULT_EXECUTOR_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_KEEP_FINISHED,
    DEFAULT_KEEP_FOR,
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MAX_CONNECTIONS_PER_USER,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MAX_RUNNING_PER_USER,
    DEFAULT_MIN_BODY_RATE,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT_MS,
    DEFAULT_UID_RANGE,
    LOG_FORMATS,
    LOG_LEVELS,
    NETWORKS,
)


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    where = serve.add_argument_group("where and who")
    where.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)"
    )
    where.add_argument(
        "--port", type=types.port, default=DEFAULT_PORT, help="port (default %(default)s)"
    )
    where.add_argument(
        "--users", metavar="FILE", help="users file of name:bcrypt-hash lines (default: the demo)"
    )
    where.add_argument("--cert", metavar="FILE", help="TLS certificate (default: the demo)")
    where.add_argument("--key", metavar="FILE", help="its key (default: the demo key)")
    jobs = serve.add_argument_group("jobs")
    jobs.add_argument(
        "--kill-grace",
        type=types.positive_float,
        default=DEFAULT_KILL_GRACE,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL on kill (default %(default)g)",
    )
    jobs.add_argument(
        "--max-output",
        type=types.byte_count,
        default=DEFAULT_MAX_OUTPUT,
        metavar="BYTES",
        help="output kept per job; past it the oldest bytes go (default %(default)s, 64 MiB)",
    )
    jobs.add_argument(
        "--no-cgroups",
        action="store_true",
        help="track job processes by session and descent even where a cgroup each could be made",
    )
    jobs.add_argument(
        "--state-dir",
        metavar="DIR",
        help="users' private directories and their uids "
        "(default /var/lib/worker as root, else ~/.local/state/worker)",
    )
    jobs.add_argument(
        "--uid-range",
        type=types.uid_range,
        default=DEFAULT_UID_RANGE,
        metavar="A-B",
        help=f"uids for users' jobs when root (default {DEFAULT_UID_RANGE[0]}-"
        f"{DEFAULT_UID_RANGE[1]}, which no account may use)",
    )
    jobs.add_argument(
        "--no-namespaces",
        action="store_true",
        help="no PID and mount namespace per job, even where root could",
    )
    jobs.add_argument(
        "--network",
        choices=NETWORKS,
        default="host",
        help="a job's network unless it asks (default %(default)s); none: loopback only",
    )
    api = serve.add_argument_group("requests")
    api.add_argument(
        "--max-body",
        type=types.byte_count,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help="largest request body (default %(default)s)",
    )
    api.add_argument(
        "--rate-limit-ms",
        type=types.milliseconds,
        default=DEFAULT_RATE_LIMIT_MS,
        metavar="N",
        help="least time between two requests of one user (default %(default)s; 0: off)",
    )
    api.add_argument(
        "--executor-timeout",
        type=types.duration,
        default=DEFAULT_EXECUTOR_TIMEOUT,
        metavar="S",
        help="how long the API waits for the executor before it answers 503 "
        "(default %(default)g); a request it gave up on never takes effect later",
    )
    door = serve.add_argument_group("connections")
    door.add_argument(
        "--max-connections",
        type=types.count,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections at most (default %(default)s); past it the oldest one not "
        "logged in is closed",
    )
    door.add_argument(
        "--max-connections-per-peer",
        type=types.count,
        default=DEFAULT_MAX_CONNECTIONS_PER_PEER,
        metavar="N",
        help="the same, per client address (default %(default)s)",
    )
    door.add_argument(
        "--max-connections-per-user",
        type=types.count,
        default=DEFAULT_MAX_CONNECTIONS_PER_USER,
        metavar="N",
        help="connections one logged-in user may hold; beyond, 429 (default %(default)s)",
    )
    door.add_argument(
        "--handshake-timeout",
        type=types.duration,
        default=DEFAULT_HANDSHAKE_TIMEOUT,
        metavar="S",
        help="seconds from connect to the end of the TLS handshake (default %(default)g)",
    )
    door.add_argument(
        "--header-timeout",
        type=types.duration,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="seconds for a request's headers to arrive (default %(default)g)",
    )
    door.add_argument(
        "--min-body-rate",
        type=types.byte_count,
        default=DEFAULT_MIN_BODY_RATE,
        metavar="BYTES",
        help=f"least speed of a request body in bytes/s after its first {DEFAULT_BODY_GRACE:g} "
        "s (default %(default)s)",
    )
    _limit_options(serve)
    log = serve.add_argument_group("log")
    log.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines or JSON lines on stderr (default %(default)s)",
    )
    log.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="least important event logged (default %(default)s; debug adds every request)",
    )


def _limit_options(serve: argparse.ArgumentParser) -> None:
    """Resource limits, quotas and retention (issue 12)."""
    limits = serve.add_argument_group("resource limits (default: computed from the host)")
    kinds = (
        ("memory", types.size, "SIZE", "memory (512M, 2G)"),
        ("cpus", types.cpus, "N", "cores (0.5, 2)"),
        ("pids", types.count, "N", "processes and threads at once"),
        ("io-read-bps", types.size, "SIZE", "reads per second from its directory's disk"),
        ("io-write-bps", types.size, "SIZE", "writes per second to its directory's disk"),
    )
    for kind, parse, metavar, what in kinds:
        limits.add_argument(
            f"--job-{kind}", type=parse, metavar=metavar, help=f"a job's {what} unless it asks"
        )
    for kind, parse, metavar, what in kinds:
        limits.add_argument(
            f"--max-job-{kind}", type=parse, metavar=metavar, help=f"the most {what} a job may ask"
        )
    limits.add_argument(
        "--cgroup-controllers",
        type=types.controllers,
        metavar="LIST",
        help="the controllers to use, of memory,cpu,pids,io (default: all there are)",
    )
    quotas = serve.add_argument_group("quotas and retention")
    quotas.add_argument(
        "--max-output-total",
        type=types.size,
        metavar="SIZE",
        help="output kept for all jobs (default: a tenth of the host's memory)",
    )
    quotas.add_argument(
        "--max-output-per-user",
        type=types.size,
        metavar="SIZE",
        help="output kept for one user's jobs (default: a quarter of the total)",
    )
    quotas.add_argument(
        "--max-running-per-user",
        type=types.count,
        default=DEFAULT_MAX_RUNNING_PER_USER,
        metavar="N",
        help="jobs one user may have running at once (default %(default)s)",
    )
    quotas.add_argument(
        "--keep-finished",
        type=types.count,
        default=DEFAULT_KEEP_FINISHED,
        metavar="N",
        help="finished jobs kept per user; the oldest go first (default %(default)s)",
    )
    quotas.add_argument(
        "--keep-for",
        type=types.duration,
        default=DEFAULT_KEEP_FOR,
        metavar="DURATION",
        help="how long a finished job is kept (default 7d)",
    )
