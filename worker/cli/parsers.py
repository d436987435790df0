"""The argparse parsers of the command line, built from actions.py: the
only source of every help text, usage error and completion script. Imported
only when a line needs a parser (parser.py reads plain lines without one:
importing argparse, and gettext with it, costs a short command more than
its parse)."""

from __future__ import annotations

import argparse
import os
import re
import sys

from worker import __version__
from worker.cli.actions import ACTIONS, Action
from worker.cli.parser import ROOT_DEFAULTS, CommandLineError, HelpRequested, unknown_action

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn


class Formatter(argparse.HelpFormatter):
    """Descriptions filled to the width, examples kept line by line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=columns() - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return text
        fill = super()._fill_text
        return "\n\n".join(fill(part, width, indent) for part in text.split("\n\n"))


class Parser(argparse.ArgumentParser):
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


class OtherAction(Exception):  # not an error: the line is parsed again
    """argparse found another action than the one the parser was built for."""


class Root(Parser):
    choices: dict[str, Parser]  # each action's parser, by name and alias
    alone = False  # built with the parser of one action only

    def error(self, message: str) -> NoReturn:
        if self.alone and message.startswith("argument ACTION: invalid choice"):
            raise OtherAction
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


class Version(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        raise HelpRequested(f"worker {__version__}\n")


def columns() -> int:
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


def build_parser(only: str | None = None, *, every: bool = False, alone: bool = False) -> Root:
    """The parser; with ``only``, just that action's arguments are added
    (``every``: all of them, for completion scripts); ``alone``: and no
    other action at all, not even by name."""
    root = Root(prog="worker", formatter_class=Formatter)
    root.alone = alone
    client_options(root, root=True)
    root.add_argument(
        "--version",
        action=Version,
        nargs=0,
        default=ROOT_DEFAULTS["version"],
        help="print the version",
    )
    actions = root.add_subparsers(
        dest="action", metavar="ACTION", parser_class=Parser, title="actions"
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
            formatter_class=Formatter,
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
