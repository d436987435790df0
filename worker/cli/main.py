"""`worker`: the one command for the server, the client and the container."""

from __future__ import annotations

import gc
import os
import sys

from worker.cli.environment import Environment, config_path
from worker.cli.exit_status import ExitStatus, exit_status_for
from worker.cli.parser import CLIENT_ACTIONS, CommandLineError, HelpRequested, json_requested, parse
from worker.client.config import DEFAULT_URL, ClientConfig
from worker.errors import UsageError, WorkerError

# What a short command imports is what it pays for, before its request:
# typing only for the type checker, and each action's own modules only
# when that action runs (tests/cli/test_startup.py keeps it so).
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from typing import Any, NoReturn

DEMO_USER = ("alice", "wonderland")
STARTUP_GC_THRESHOLD = 50_000  # Python's default is 700 (2,000 from 3.13)


def main(argv: list[str] | None = None) -> NoReturn:
    # Start-up allocates tens of thousands of objects that live until the
    # end (modules, classes); the collector would walk them a dozen times
    # over before a short command's request. It still runs, only less often.
    gc.set_threshold(STARTUP_GC_THRESHOLD)
    ran = _Ran()
    status = run(sys.argv[1:] if argv is None else argv, ran=ran)
    if ran.action in CLIENT_ACTIONS:
        _leave_now(status)
    sys.exit(status)


class _Ran:
    """What ``run`` was asked to do, once it knows."""

    action: str | None = None


def run(argv: list[str], env: Environment | None = None, *, ran: _Ran | None = None) -> int:
    env = env or Environment()
    action: str | None = None
    as_json = json_requested(argv)
    try:
        args = parse(argv)
        action, as_json = args.action, bool(getattr(args, "json", False))
        if ran is not None:
            ran.action = action
        return _dispatch(args, env)
    except HelpRequested as shown:
        env.stdout.write(shown.text)
        return ExitStatus.SUCCESS
    except WorkerError as exc:
        if as_json:
            from worker.cli.render import print_json

            print_json(env, {"error": exc.message})
        elif isinstance(exc, UsageError):
            hint = exc.hint if isinstance(exc, CommandLineError) else _hint(action)
            env.stderr.write(f"Client error: {exc.message}\n{hint}\n")
        else:
            from worker.cli import render

            render.error(env, exc.message)
        return exit_status_for(exc)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`worker out 1 | head`); that is not an error.
        _silence_stdout()
        return ExitStatus.SUCCESS


def _hint(action: str | None) -> str:
    return f"see `worker {action} --help`" if action else "see `worker help`"


def _dispatch(args: argparse.Namespace, env: Environment) -> int:
    if args.action == "serve":
        from worker.cli.serve_command import serve_command

        return serve_command(args)
    if args.action == "certs":
        from worker.cli.serve_command import certs_command

        return certs_command(args)
    if args.action == "users":
        from worker.cli.users_command import users_command

        return users_command(args)
    if args.action == "context":
        from worker.cli.context_command import context_command

        return context_command(args, env)
    if args.action == "completion":
        from worker.cli.completion import script

        env.stdout.write(script(args.shell))
        return ExitStatus.SUCCESS
    if args.action in CLIENT_ACTIONS:
        from worker.cli.client_commands import client_command

        return client_command(args, client_config(args, env.environ), env)
    raise CommandLineError(f"invalid action {args.action!r}")


def client_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ClientConfig:
    """Flags beat the environment, which beats the config file: a context
    named by ``--context`` gives its values as flags would; one named by
    WORKER_CONTEXT or the file's ``current`` gives way to WORKER_URL,
    WORKER_CA, WORKER_USER and WORKER_PASSWORD."""
    named = getattr(args, "context", None)
    path = config_path(environ)
    file = None
    if path is not None and os.path.exists(path):  # most people have none: skip the module
        from worker.cli import contexts

        file = contexts.load(environ)
    if named and file is None:
        raise UsageError(f"--context {named}: no client config at {path}")
    chosen = named or environ.get("WORKER_CONTEXT") or (file.current if file else None)
    context = file.get(chosen) if file is not None and chosen else None
    if chosen and context is None:
        raise UsageError(f"context {chosen!r}: no client config at {path}")
    strong = context if named else None  # a flag's context beats the environment
    weak = None if named else context

    def pick(flag: str | None, variable: str, field: str, default: str) -> str:
        for value in (
            flag,
            getattr(strong, field, None),
            environ.get(variable),
            getattr(weak, field, None),
        ):
            if value:
                return value
        return default

    url = pick(args.url, "WORKER_URL", "url", DEFAULT_URL)
    ca = pick(args.ca, "WORKER_CA", "ca", "") or _demo_ca()
    if strong is not None and strong.user:
        assert file is not None
        user, password = strong.user, _password(strong, file, environ)
    elif "WORKER_USER" in environ or "WORKER_PASSWORD" in environ:
        user, password = _from_environment(environ)
    elif weak is not None and weak.user:
        assert file is not None
        user, password = weak.user, _password(weak, file, environ)
    else:
        user, password = DEMO_USER
    return ClientConfig(url=url, ca_file=ca, user=user, password=password, json=bool(args.json))


def _demo_ca() -> str:
    from worker.resources import DEMO_CA, demo_path

    return str(demo_path(DEMO_CA))


def _password(context: Any, file: Any, environ: Mapping[str, str]) -> str:
    from worker.cli import contexts

    return contexts.password_of(context, file, environ)


def _from_environment(environ: Mapping[str, str]) -> tuple[str, str]:
    user = environ.get("WORKER_USER")
    password = environ.get("WORKER_PASSWORD")
    if user is None:
        raise UsageError("WORKER_PASSWORD is set but WORKER_USER is not")
    if password is None:
        raise UsageError(f"WORKER_USER is {user!r} but WORKER_PASSWORD is not set")
    return user, password


def _leave_now(status: int) -> None:
    """Exit as soon as stdout and stderr are flushed. A client action holds
    nothing more (no files, threads or atexit work), and tearing the
    interpreter down module by module, then OpenSSL's own clean-up, would
    cost a short command a tenth of its time. If a flush fails, the
    ordinary exit says so, as it always has."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return None
    os._exit(status)


def _silence_stdout() -> None:
    # Python would complain again while flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
