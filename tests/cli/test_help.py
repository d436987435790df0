"""Help for every action, from the one parser; --version; mistakes are one
line, a pointer to the help, and exit 2 (in JSON with --json)."""

from __future__ import annotations

import json

import pytest

from tests.cli.mockenv import run
from worker import __version__
from worker.cli.actions import ACTIONS

NAMES = [action.name for action in ACTIONS]


@pytest.mark.parametrize("action", NAMES)
def test_each_action_has_its_own_help(action: str) -> None:
    status, env = run(action, "--help", terminal=False)
    assert status == 0, env.err
    assert env.out.startswith(f"usage: worker {action}")
    assert env.err == ""
    again, same = run("help", action, terminal=False)
    assert (again, same.out) == (0, env.out)


def test_an_alias_has_its_actions_help() -> None:
    assert run("logs", "-h")[1].out == run("help", "out")[1].out
    assert run("ps", "-h")[1].out.startswith("usage: worker list")


def test_run_help_names_its_options_and_examples() -> None:
    text = run("run", "--help")[1].out
    for option in ("--wait", "--timeout", "--env KEY[=VALUE]", "--cwd", "--name", "--json"):
        assert option in text
    assert "examples:\n  worker run make test\n" in text


def test_serve_help_has_every_server_option() -> None:
    text = run("serve", "--help")[1].out
    for option in ("--rate-limit-ms", "--kill-grace", "--log-format", "--log-level"):
        assert option in text


@pytest.mark.parametrize("argv", [["help"], ["--help"], ["-h"]])
def test_help_lists_every_action(argv: list[str]) -> None:
    status, env = run(*argv)
    assert status == 0
    for action in ACTIONS:
        assert f"\n  {', '.join((action.name, *action.aliases))} " in env.out


def test_version() -> None:
    status, env = run("--version")
    assert (status, env.out) == (0, f"worker {__version__}\n")


def test_a_misspelled_action_gets_a_suggestion() -> None:
    status, env = run("stauts", "1")
    assert status == 2
    assert env.err == (
        "Client error: invalid action 'stauts' (did you mean 'status'?)\nsee `worker help`\n"
    )
    assert env.out == ""


def test_help_of_a_misspelled_action_gets_a_suggestion() -> None:
    status, env = run("help", "kil")
    assert status == 2
    assert "did you mean 'kill'?" in env.err


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["run", "--timeout", "soon", "true"], "run"),
        (["run"], "run"),
        (["status"], "status"),
        (["kill", "-s", "NOPE", "3"], "kill"),
        (["kill", "-s", "HUP", "--force", "3"], "kill"),
        (["out", "--tail", "-2", "3"], "out"),
        (["serve", "--port", "http"], "serve"),
    ],
)
def test_a_usage_error_is_one_line_and_where_to_look(argv: list[str], action: str) -> None:
    status, env = run(*argv)
    assert status == 2
    message, hint = env.err.splitlines()
    assert message.startswith("Client error: ")
    assert hint == f"see `worker {action} --help`"


def test_no_action_is_a_usage_error() -> None:
    status, env = run()
    assert status == 2
    assert env.err == "Client error: no action given\nsee `worker help`\n"


@pytest.mark.parametrize(
    "argv", [["--json", "stauts", "1"], ["status", "--json", "1abc"], ["--json", "run"]]
)
def test_usage_errors_in_json(argv: list[str]) -> None:
    status, env = run(*argv)
    assert status == 2
    assert env.err == ""
    (line,) = env.out.splitlines()
    assert set(json.loads(line)) == {"error"}


def test_the_jobs_own_json_option_is_not_worker_s() -> None:
    status, env = run("run", "--timeout", "x", "echo", "--json")
    assert status == 2
    assert env.err.startswith("Client error: ")
