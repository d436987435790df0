"""Every action of `worker`, declared once: its summary, its arguments with
their help, its examples. parser.py turns this table into the one parser
that every help text, usage error and completion script comes from.
"""

from __future__ import annotations

from worker.cli import argtypes as types

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

JOB_HELP = "a job ID, or a name given with `run --name` (your newest job of that name)"
STATUSES = ("running", "completed", "failed", "killed")
SHELLS = ("bash", "zsh", "fish")


class Action:
    """(A plain class: a NamedTuple costs a short command a millisecond.)"""

    def __init__(  # noqa: PLR0917 - the table below reads best positionally
        self,
        name: str,
        group: str,
        summary: str,
        add: Callable[[argparse.ArgumentParser], None],
        description: str = "",
        examples: str = "",
        *,
        aliases: tuple[str, ...] = (),
        client: bool = False,
        usage: str | None = None,
    ) -> None:
        self.name = name
        self.group = group  # where `worker help` lists it
        self.summary = summary  # its line in `worker help`
        self.add = add  # adds its own arguments
        self.description = description
        self.examples = examples
        self.aliases = aliases
        self.client = client  # talks to a server: takes the client options
        self.usage = usage  # None: argparse's


def _run(p: argparse.ArgumentParser) -> None:
    import argparse  # only here: a plain line builds no parser

    p.add_argument(
        "-w",
        "--wait",
        action="store_true",
        help="stream the job's output and exit with its exit code (128+N if signal N ended "
        "it, 127 if it could not start); Ctrl-C asks whether to kill it",
    )
    p.add_argument(
        "--kill-on-interrupt", action="store_true", help="with -w: Ctrl-C kills the job, no asking"
    )
    p.add_argument(
        "--timeout",
        type=types.duration,
        metavar="DURATION",
        help="kill the job after this long (30s, 5m, 1h30m)",
    )
    p.add_argument(
        "-e",
        "--env",
        type=types.env_pair,
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="add to the job's environment; KEY alone passes your own KEY (repeatable)",
    )
    p.add_argument(
        "--cwd",
        metavar="DIR",
        help="run the job in DIR on the server; a relative DIR (such as .) is taken from "
        "your current directory (default: your own directory on the server)",
    )
    p.add_argument(
        "--network",
        choices=("none", "host"),
        help="none: no network but loopback (default: the server's choice)",
    )
    limits = p.add_argument_group("limits (docker's names; default and maximum: the server's)")
    limits.add_argument(
        "-m", "--memory", type=types.size, metavar="SIZE", help="memory, such as 512M or 2G"
    )
    limits.add_argument("--cpus", type=types.cpus, metavar="N", help="CPU cores, such as 0.5")
    limits.add_argument(
        "--pids-limit", type=types.count, metavar="N", help="processes and threads at once"
    )
    limits.add_argument(
        "--device-read-bps",
        type=types.size,
        metavar="RATE",
        help="bytes read per second from the disk of its directory, such as 10M",
    )
    limits.add_argument(
        "--device-write-bps",
        type=types.size,
        metavar="RATE",
        help="bytes written per second to the disk of its directory",
    )
    limits.add_argument(
        "--blkio-weight", type=types.io_weight, metavar="N", help="IO weight, 1 to 10000"
    )
    p.add_argument(
        "--name",
        type=types.job_name,
        help="a name to use instead of the ID in other actions (letters, digits, _ . -)",
    )
    p.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="CMD [ARGS...]",
        help="the command; everything from CMD on is the job's, options too",
    )


def _job(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", metavar="JOB", type=types.job_ref, help=JOB_HELP)


def _out(p: argparse.ArgumentParser) -> None:
    _job(p)
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow the output live until the job ends (Ctrl-C stops following, not the job)",
    )
    p.add_argument(
        "-n",
        "--tail",
        type=types.lines,
        metavar="N",
        help="only the last N lines (then live, with -f)",
    )


def _wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobs", metavar="JOB", nargs="+", type=types.job_ref, help=JOB_HELP)


def _kill(p: argparse.ArgumentParser) -> None:
    _job(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "-s",
        "--signal",
        type=types.signal_name,
        metavar="SIGNAL",
        help="send only this signal (HUP, INT, USR1, 15...) to every process of the job, "
        "once, and return; no SIGTERM-then-SIGKILL",
    )
    how.add_argument("--force", action="store_true", help="SIGKILL at once, no grace period")


def _send(p: argparse.ArgumentParser) -> None:
    _job(p)
    p.add_argument("text", metavar="TEXT", nargs="?", help="what to write (a newline follows)")
    p.add_argument("-n", dest="newline", action="store_false", help="no newline after TEXT")
    p.add_argument("--eof", action="store_true", help="then close the job's stdin")


def _list(p: argparse.ArgumentParser) -> None:
    only = p.add_mutually_exclusive_group()
    for status in STATUSES:
        only.add_argument(
            f"--{status}",
            dest="only",
            action="store_const",
            const=status,
            help=f"only {status} jobs",
        )
    p.add_argument(
        "--limit", type=types.count, default=100, metavar="N", help="at most N (default 100)"
    )
    p.add_argument("--all", action="store_true", help="all of them")


def _rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobs", metavar="JOB", nargs="+", type=types.job_ref, help=JOB_HELP)


def _nothing(p: argparse.ArgumentParser) -> None:
    pass


def _certs(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIR", help="where to write them (made if missing)")


def _users(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="users_action", metavar="add", parser_class=type(p))
    sub.required = True
    add = sub.add_parser(
        "add",
        help="add a user, or change their password",
        description="Add a user to a users file, or change their password: asks twice, no echo.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--users", required=True, metavar="FILE", help="the users file to change")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    add.add_argument(
        "--account", metavar="ACCOUNT", help="run their jobs as this existing Unix account"
    )


def _context(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="context_action", metavar="ls|use", parser_class=type(p))
    sub.required = True
    sub.add_parser("ls", help="list the contexts (* marks the current one)")
    use = sub.add_parser("use", help="make NAME the current context")
    use.add_argument("name", metavar="NAME")


def _completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))


def _help(p: argparse.ArgumentParser) -> None:
    p.add_argument("topic", metavar="ACTION", nargs="?", help="the action to explain")


def _serve(p: argparse.ArgumentParser) -> None:
    from worker.cli.serve_options import add_serve_options

    add_serve_options(p)


ACTIONS: tuple[Action, ...] = (
    Action(
        "run",
        "Jobs",
        "start a job and print its ID (-w: wait for it)",
        _run,
        "Start CMD with ARGS as a job on the server. Prints its ID and returns at once "
        "(piped: only the ID);\nwith -w it streams the output and exits with the job's "
        "exit code. Options go before CMD.",
        "worker run make test\n"
        "worker run -w --timeout 10m -e CI=1 -e HOME --cwd . make test\n"
        'id=$(worker run sleep 60) && worker kill "$id"\n'
        "worker run --name build make && worker out -f build",
        client=True,
        usage="%(prog)s [OPTIONS] CMD [ARGS...]",
    ),
    Action(
        "status",
        "Jobs",
        "show a job's status",
        _job,
        "Show a job's status, exit code, PID, times, and why it failed to start if it did.",
        'worker status 3\nworker status build\nworker --json status "$id"',
        client=True,
    ),
    Action(
        "out",
        "Jobs",
        "show a job's output (-f: follow it live)",
        _out,
        "Show a job's output: on a terminal under a header with its status, piped as the raw "
        "bytes.\nWith -f it follows live until the job ends, then says how it ended.",
        "worker out 3\nworker out -f build\nworker out --tail 20 -f 3\nworker out 3 > out.bin",
        aliases=("logs",),
        client=True,
    ),
    Action(
        "wait",
        "Jobs",
        "wait for jobs to end; exit with the job's exit code",
        _wait,
        "Wait until each job has ended. Exits with the job's exit code (128+N if signal N "
        "ended it,\n127 if it could not start), for several jobs the first that is not 0; "
        "piped, prints each one.",
        'worker wait "$id"\nworker wait build test && echo both passed',
        client=True,
    ),
    Action(
        "kill",
        "Jobs",
        "stop a job and every process it started",
        _kill,
        "Stop a job: SIGTERM to every process of it, then SIGKILL to whatever is left after "
        "the server's\ngrace period; answered once all of them are gone. -s sends a single "
        "signal instead.",
        "worker kill 3\nworker kill --force build\nworker kill -s HUP 3",
        client=True,
    ),
    Action(
        "send",
        "Jobs",
        "write TEXT to a job's stdin",
        _send,
        "Write TEXT and a newline (none with -n) to a job's stdin; --eof closes it.",
        "worker send 3 ann\nworker send 3 -n 'no newline'\nworker send 3 --eof",
        client=True,
    ),
    Action(
        "list",
        "Jobs",
        "your jobs, newest first",
        _list,
        "List your jobs, newest first (the newest 100 unless told).",
        "worker list\nworker ps --running\nworker list --all --json",
        aliases=("ps",),
        client=True,
    ),
    Action(
        "rm",
        "Jobs",
        "forget finished jobs and their output",
        _rm,
        "Forget finished jobs: their status and output are gone from the server. A running "
        "job is refused\n(kill it first); the others are removed all the same.",
        "worker rm 3 4\nworker rm build",
        client=True,
    ),
    Action(
        "prune",
        "Jobs",
        "forget all of your finished jobs",
        _nothing,
        "Forget all of your finished jobs and their output; running jobs stay.",
        "worker prune",
        client=True,
    ),
    Action(
        "health",
        "Server",
        "exit 0 if the server and its executor answer",
        _nothing,
        "Exit 0 if the server and its executor answer (no credentials needed).",
        "worker health",
        client=True,
    ),
    Action(
        "serve",
        "Server",
        "start the server (API and executor) in the foreground",
        _serve,
        "Start the server in the foreground: the HTTPS API and the executor that runs the "
        "jobs.\nIt prints where it listens and logs what happens to stderr; Ctrl-C or "
        "SIGTERM stops it and every job.",
        "worker serve\n"
        "worker serve --cert server.pem --key server-key.pem --users users\n"
        "worker serve --log-format json --log-level debug",
    ),
    Action(
        "certs",
        "Setup",
        "make a new private CA and server certificate in DIR",
        _certs,
        "Make a new private CA, a server certificate for localhost and its key in DIR.",
        "worker certs ~/.worker",
    ),
    Action(
        "users",
        "Setup",
        "add a user to a users file, or change a password",
        _users,
        "Manage the users file the server reads at start (restart it after a change).",
        "worker users add alice --users ~/.worker/users",
    ),
    Action(
        "context",
        "Setup",
        "list the servers of your client config, or pick one",
        _context,
        "Contexts are named servers in ~/.config/worker/config.toml (url, ca, user, and "
        "password_command\nor password_env); --context NAME or WORKER_CONTEXT picks one for "
        "a command, `use` for good.",
        "worker context ls\nworker context use prod\nworker --context prod list",
    ),
    Action(
        "completion",
        "Setup",
        "print a shell completion script (bash, zsh, fish)",
        _completion,
        "Print a completion script for SHELL, generated from this command's own parser.",
        'eval "$(worker completion bash)"\nworker completion fish > '
        "~/.config/fish/completions/worker.fish",
    ),
    Action(
        "help",
        "Setup",
        "show this help, or an action's (worker help run)",
        _help,
        "Show the list of actions, or one action's help.",
        "worker help\nworker help run",
    ),
)

BY_NAME = {name: action for action in ACTIONS for name in (action.name, *action.aliases)}
# Actions whose only argument is one JOB, and those that take none: a plain
# line of one of these is parsed without building a parser (parser.py).
JOB_ONLY = frozenset(name for name, action in BY_NAME.items() if action.add is _job)
NO_ARGUMENTS = frozenset(name for name, action in BY_NAME.items() if action.add is _nothing)
