"""The server-side actions: serve and certs."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from worker.cli.exit_status import ExitStatus
from worker.config import ApiConfig, ExecutorConfig, LogConfig, ServeConfig
from worker.errors import UsageError
from worker.executor.killer import KILL_SETTLE
from worker.protocol import Limits
from worker.resources import DEMO_CERT, DEMO_KEY, DEMO_USERS, demo_file


def serve_config(args: argparse.Namespace) -> ServeConfig:
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    api = ApiConfig(
        host=args.host,
        port=args.port,
        users_file=Path(args.users) if args.users else demo_file(DEMO_USERS),
        cert_file=Path(args.cert) if args.cert else demo_file(DEMO_CERT),
        key_file=Path(args.key) if args.key else demo_file(DEMO_KEY),
        max_body=args.max_body,
        rate_limit_ms=args.rate_limit_ms,
        # Longer than the slowest kill: the grace period, then SIGKILL settling.
        response_timeout=args.kill_grace + KILL_SETTLE + 30,
        executor_timeout=args.executor_timeout,
        max_output=args.max_output,
        max_connections=args.max_connections,
        max_connections_per_peer=args.max_connections_per_peer,
        max_connections_per_user=args.max_connections_per_user,
        # The first request's headers are timed from connect, handshake
        # included: a longer handshake deadline could never be used.
        handshake_timeout=min(args.handshake_timeout, args.header_timeout),
        header_timeout=args.header_timeout,
        min_body_rate=args.min_body_rate,
        kill_grace=args.kill_grace,
    )
    executor = ExecutorConfig(
        kill_grace=args.kill_grace,
        max_output=args.max_output,
        use_cgroups=not args.no_cgroups,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        users_file=api.users_file,
        uid_range=args.uid_range,
        namespaces=not args.no_namespaces,
        network=args.network,
        limit_defaults=_limits(args, "job_"),
        limit_maxima=_limits(args, "max_job_"),
        controllers=args.cgroup_controllers or ("memory", "cpu", "pids", "io"),
        max_output_total=args.max_output_total,
        max_output_per_user=args.max_output_per_user,
        max_running_per_user=args.max_running_per_user,
        keep_finished=args.keep_finished,
        keep_for=args.keep_for,
    )
    log = LogConfig(level=args.log_level, format=args.log_format)
    return ServeConfig(api=api, executor=executor, log=log)


def _limits(args: argparse.Namespace, prefix: str) -> Limits | None:
    """The limits given by ``--job-*`` (or ``--max-job-*``) flags; None if
    none was given (then the server's own, computed from the host)."""
    from worker.executor.limits import host_defaults, host_maxima

    given = {
        name: getattr(args, prefix + name)
        for name in ("memory", "cpus", "pids", "io_read_bps", "io_write_bps")
        if getattr(args, prefix + name) is not None
    }
    if not given:
        return None
    base = host_defaults() if prefix == "job_" else host_maxima()
    return replace(base, **given)


def serve_command(args: argparse.Namespace) -> int:
    import logging

    from worker import logs
    from worker.serve import serve

    config = serve_config(args)
    logs.configure(config.log)
    log = logging.getLogger("worker.serve")

    def say(line: str) -> None:
        print(line, flush=True)

    def warn(line: str) -> None:
        log.error("%s", line)

    return serve(config, say, warn)


def certs_command(args: argparse.Namespace) -> int:
    from worker.certgen import generate

    directory = Path(args.directory)
    for path in generate(directory):
        print(path)
    print(
        f"Start the server with: worker serve --cert {directory / 'server.pem'}"
        f" --key {directory / 'server-key.pem'}\n"
        f"Point clients at the CA with: --ca {directory / 'ca.pem'} (or WORKER_CA)"
    )
    return ExitStatus.SUCCESS
