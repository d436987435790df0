"""The command line: one argparse parser, built from actions.py, is the only
source of every help text, usage error and completion script.

A command builds its own action's parser only: building them all costs a
short command more than its request. Every other action is there by name
only where the line names no known action (`worker help`, typos, with
their suggestion), or where argparse took another word for the action than
the one found here (then the line is parsed again, as it always was).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from worker import __version__
from worker.cli.actions import ACTIONS, BY_NAME, JOB_ONLY, NO_ARGUMENTS, Action
from worker.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn

# Root options that take a value: the word after one is not the action.
VALUED = frozenset({"--url", "--ca", "--context"})
# What the root parser's options default to (client_options, --version):
# a plain line's namespace starts from these (a test keeps them argparse's).
ROOT_DEFAULTS = {"url": None, "ca": None, "context": None, "json": False, "version": None}
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


class _Formatter(argparse.HelpFormatter):
    """Descriptions filled to the width, examples kept line by line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=_columns() - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return text
        fill = super()._fill_text
        return "\n\n".join(fill(part, width, indent) for part in text.split("\n\n"))


class _Parser(argparse.ArgumentParser):
    """Errors and help as exceptions: main.py decides where they are printed."""

    action_name: str | None = None

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)'", message)
        if match and message.startswith("argument ACTION"):
            raise CommandLineError(unknown_action(match.group(1)))
        raise CommandLineError(message, self.action_name)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise CommandLineError(message or "bad command line", self.action_name)
        raise HelpRequested(message or "")

    def print_help(self, file: Any = None) -> None:
        raise HelpRequested(self.format_help())


class _OtherAction(Exception):  # not an error: the line is parsed again
    """argparse found another action than the one the parser was built for."""


class _Root(_Parser):
    choices: dict[str, _Parser]  # each action's parser, by name and alias
    alone = False  # built with the parser of one action only

    def error(self, message: str) -> NoReturn:
        if self.alone and message.startswith("argument ACTION: invalid choice"):
            raise _OtherAction
        super().error(message)

    def format_help(self) -> str:
        """`worker help`: the actions, grouped as actions.py has them, and
        the options, as argparse formats them."""
        lines = [
            "usage: worker [--url URL] [--ca FILE] [--context NAME] [--json] ACTION ...",
            "",
            "Run Linux commands as jobs on a worker server, then watch, read and stop them.",
        ]
        width = max(len(", ".join((a.name, *a.aliases))) for a in ACTIONS) + 2
        for group in dict.fromkeys(action.group for action in ACTIONS):
            lines += ["", f"{group}:"]
            for action in ACTIONS:
                if action.group == group:
                    names = ", ".join((action.name, *action.aliases))
                    lines.append(f"  {names:<{width}}{action.summary}")
        formatter = self._get_formatter()
        for section in self._action_groups:
            shown = [a for a in section._group_actions if a.option_strings]
            if shown:
                formatter.start_section(section.title)
                formatter.add_arguments(shown)
                formatter.end_section()
        lines += [
            "",
            formatter.format_help().rstrip("\n"),
            "",
            "Credentials come from WORKER_USER and WORKER_PASSWORD, or from a context",
            "(default: the demo user alice). A job is named by its ID, or by a name",
            "given with `run --name`. Client options go before or after the action",
            "(for `run`, before CMD).",
            "",
            "`worker help ACTION` or `worker ACTION --help` shows an action's options.",
            "",
        ]
        return "\n".join(lines)


class _Version(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        raise HelpRequested(f"worker {__version__}\n")


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, which argparse would ask for
    every argument added: importing shutil (with its compression modules)
    costs a short command more than its parser."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def unknown_action(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(BY_NAME), n=1, cutoff=0.6)
    return f"invalid action {word!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def client_options(parser: argparse.ArgumentParser, root: bool) -> None:
    # On the root parser and on each client action, so they may come before
    # or after the action; SUPPRESS keeps an action's copy from overwriting
    # a value given before it.
    def default(name: str) -> object:
        return ROOT_DEFAULTS[name] if root else argparse.SUPPRESS

    group = parser.add_argument_group("client options")
    group.add_argument(
        "--url",
        default=default("url"),
        help="the server (env WORKER_URL, default https://127.0.0.1:8443)",
    )
    group.add_argument(
        "--ca",
        default=default("ca"),
        metavar="FILE",
        help="the only CA certificate to trust (env WORKER_CA, default the demo CA)",
    )
    group.add_argument(
        "--context",
        default=default("context"),
        metavar="NAME",
        help="a server of your client config (env WORKER_CONTEXT; see `worker help context`)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default("json"),
        help="one compact JSON document per reply, errors too; JSON lines for streams",
    )


def build(only: str | None = None, *, every: bool = False, alone: bool = False) -> _Root:
    """The parser; with ``only``, just that action's arguments are added
    (``every``: all of them, for completion scripts); ``alone``: and no
    other action at all, not even by name."""
    root = _Root(prog="worker", formatter_class=_Formatter)
    root.alone = alone
    client_options(root, root=True)
    root.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        default=ROOT_DEFAULTS["version"],
        help="print the version",
    )
    actions = root.add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser, title="actions"
    )
    actions.required = True
    root.choices = actions.choices
    for action in ACTIONS:
        full = every or action.name == only
        if alone and not full:
            continue
        parser = actions.add_parser(
            action.name,
            aliases=list(action.aliases),
            help=action.summary,
            description=action.description if full else None,
            epilog=_examples(action) if full else None,
            usage=action.usage,
            formatter_class=_Formatter,
            add_help=full,
        )
        parser.action_name = action.name
        if full:
            action.add(parser)
            if action.client:
                client_options(parser, root=False)
    return root


def _examples(action: Action) -> str | None:
    if not action.examples:
        return None
    return "examples:\n" + "".join(f"  {line}\n" for line in action.examples.splitlines())


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
    try:
        # Help looks the same either way: the root's lists ACTIONS itself.
        args, extra = build(word, alone=word in BY_NAME).parse_known_args(argv)
    except _OtherAction:
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
    """`worker status ID`, `worker health` (with or without --json): the
    namespace argparse would give such a line, without building a parser
    (its gettext lookups, locale and patterns cost a short command more
    than its parse). Anything else (an option, a name, a word more): None."""
    words = [word for word in argv if word != "--json"]
    if len(argv) - len(words) > 1 or not words:
        return None
    name, given = words[0], words[1:]
    found: dict[str, object] = {"action": BY_NAME[name].name} if name in BY_NAME else {}
    if name in JOB_ONLY and len(given) == 1 and given[0].isascii() and given[0].isdigit():
        found["job"] = given[0]
    elif not (name in NO_ARGUMENTS and not given):
        return None
    return argparse.Namespace(**{**ROOT_DEFAULTS, **found, "json": len(words) < len(argv)})


def help_text(topic: str | None) -> str:
    """`worker help [ACTION]`."""
    name = ALIASES.get(topic, topic) if topic else None
    if name is not None and name not in BY_NAME:
        raise CommandLineError(unknown_action(str(topic)), "help")
    root = build(name)
    return root.format_help() if name is None else root.choices[name].format_help()
