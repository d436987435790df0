"""The command line: one argparse parser, built from actions.py (in
parsers.py), is the only source of every help text, usage error and
completion script.

A command builds its own action's parser only: building them all costs a
short command more than its request. Every other action is there by name
only where the line names no known action (`worker help`, typos, with
their suggestion), or where argparse took another word for the action than
the one found here (then the line is parsed again, as it always was).
"""

from __future__ import annotations

from types import SimpleNamespace

from worker.cli.actions import ACTIONS, BY_NAME, JOB_ONLY, NO_ARGUMENTS
from worker.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse

    from worker.cli.parsers import Root

# Root options that take a value: the word after one is not the action.
VALUED = frozenset({"--url", "--ca", "--context"})
# What the root parser's options default to (client_options, --version):
# a plain line's namespace starts from these (a test keeps them argparse's).
ROOT_DEFAULTS = {"url": None, "ca": None, "context": None, "json": False, "version": None}
# The rest of a run line's namespace, as actions.py's arguments default
# (a test holds the two to the same).
RUN_DEFAULTS = {
    "kill_on_interrupt": False,
    "timeout": None,
    "cwd": None,
    "network": None,
    "memory": None,
    "cpus": None,
    "pids_limit": None,
    "device_read_bps": None,
    "device_write_bps": None,
    "blkio_weight": None,
    "name": None,
}
ALIASES = {alias: action.name for action in ACTIONS for alias in action.aliases}
CLIENT_ACTIONS = tuple(action.name for action in ACTIONS if action.client)


class CommandLineError(UsageError):
    """The command line is wrong; ``action`` is the action it was for, if known."""

    def __init__(self, message: str, action: str | None = None) -> None:
        super().__init__(message)
        self.action = action

    @property
    def hint(self) -> str:
        return f"see `worker {self.action} --help`" if self.action else "see `worker help`"


class HelpRequested(Exception):  # not an error: what to print, then exit 0
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def unknown_action(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(BY_NAME), n=1, cutoff=0.6)
    return f"invalid action {word!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _action_word(argv: list[str]) -> str | None:
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUED:
            skip = True
        elif not word.startswith("-"):
            return ALIASES.get(word, word)
    return None


def json_requested(argv: list[str]) -> bool:
    """Whether --json is among worker's own words (not the job's, after
    `run ... CMD`), for errors found before the line is parsed."""
    action = None
    skip = False
    for word in argv:
        if word == "--json":
            return True
        if skip or word in VALUED:
            skip = not skip
        elif word == "--" or (action == "run" and not word.startswith("-")):
            return False
        elif not word.startswith("-") and action is None:
            action = word
    return False


def parse(argv: list[str]) -> argparse.Namespace:
    if not argv:
        raise CommandLineError("no action given")
    plain = _plain(argv)
    if plain is not None:
        return plain
    word = _action_word(argv)
    from worker.cli.parsers import OtherAction

    try:
        # Help looks the same either way: the root's lists ACTIONS itself.
        args, extra = build(word, alone=word in BY_NAME).parse_known_args(argv)
    except OtherAction:
        args, extra = build(word).parse_known_args(argv)
    args.action = ALIASES.get(args.action, args.action)
    action = args.action
    # argparse gives out optional positionals before it sees later options:
    # `send 3 -n TEXT` leaves TEXT over.
    if action == "send" and args.text is None and len(extra) == 1:
        args.text = extra.pop()
    if extra:
        raise CommandLineError(f"unrecognized arguments: {' '.join(extra)}", action)
    if action == "run":
        # argparse keeps the job's words as given, except that it would eat a
        # `--` after CMD; one leading `--` (worker's own) is the only one dropped.
        words = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not words:
            raise CommandLineError("run needs a command: worker run [OPTIONS] CMD [ARGS]", action)
        args.command, args.args = words[0], words[1:]
    if action == "send" and args.text is None and not args.eof:
        raise CommandLineError("send needs TEXT or --eof: worker send JOB TEXT", action)
    if action == "help":
        raise HelpRequested(help_text(args.topic))
    return args


def _plain(argv: list[str]) -> argparse.Namespace | None:
    """`worker status ID`, `worker health` (with or without --json), `worker
    run [-w] CMD [ARGS...]`: the namespace argparse would give such a line,
    without importing argparse or building a parser (with its gettext
    lookups, locale and patterns, that costs a short command more than its
    request). Anything else (an option, a name, a word more): None."""
    if "run" in argv[:2]:
        return _plain_run(argv)
    words = [word for word in argv if word != "--json"]
    if len(argv) - len(words) > 1 or not words:
        return None
    name, given = words[0], words[1:]
    found: dict[str, object] = {"action": BY_NAME[name].name} if name in BY_NAME else {}
    if name in JOB_ONLY and len(given) == 1 and given[0].isascii() and given[0].isdigit():
        found["job"] = given[0]
    elif not (name in NO_ARGUMENTS and not given):
        return None
    # Read as argparse's namespace is, by attribute and vars() only.
    return SimpleNamespace(  # type: ignore[return-value]
        **{**ROOT_DEFAULTS, **found, "json": len(words) < len(argv)}
    )


def _plain_run(argv: list[str]) -> argparse.Namespace | None:
    at = 1 if argv[0] == "--json" else 0
    if argv[at : at + 1] != ["run"]:
        return None
    at += 1
    wait = False
    while argv[at : at + 1] in (["-w"], ["--wait"]):
        wait, at = True, at + 1
    words = argv[at:]
    if not words or words[0].startswith("-"):  # an option, `--`, or no CMD
        return None
    given = {"json": argv[0] == "--json", "wait": wait, "env": []}
    return SimpleNamespace(  # type: ignore[return-value]
        **{**ROOT_DEFAULTS, **RUN_DEFAULTS, **given},
        action="run",
        argv=words,
        command=words[0],
        args=words[1:],
    )


def build(only: str | None = None, *, every: bool = False, alone: bool = False) -> Root:
    """The parser (see parsers.build_parser), imported only when needed."""
    from worker.cli.parsers import build_parser

    return build_parser(only, every=every, alone=alone)


def help_text(topic: str | None) -> str:
    """`worker help [ACTION]`."""
    name = ALIASES.get(topic, topic) if topic else None
    if name is not None and name not in BY_NAME:
        raise CommandLineError(unknown_action(str(topic)), "help")
    root = build(name)
    return root.format_help() if name is None else root.choices[name].format_help()
