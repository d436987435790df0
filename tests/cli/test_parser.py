"""The command line: actions, options in any position, and the client config."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from worker.cli.main import DEMO_USER, client_config
from worker.cli.parser import HelpRequested, parse
from worker.config import (
    DEFAULT_HOST,
    DEFAULT_KILL_GRACE,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    DEFAULT_URL,
)
from worker.errors import UsageError
from worker.resources import DEMO_CA, demo_file

# --- run --------------------------------------------------------------------


def test_run_splits_command_and_args() -> None:
    args = parse(["run", "ls", "-la", "/"])
    assert args.action == "run"
    assert args.command == "ls"
    assert args.args == ["-la", "/"]
    assert args.json is False
    assert args.url is None
    assert args.ca is None


def test_run_without_args() -> None:
    args = parse(["run", "true"])
    assert (args.command, args.args) == ("true", [])


def test_run_option_before_command_is_ours_after_it_is_the_jobs() -> None:
    args = parse(["run", "--json", "echo", "--json"])
    assert args.json is True
    assert args.command == "echo"
    assert args.args == ["--json"]


@pytest.mark.parametrize(
    "job_args",
    [
        ["--url", "https://elsewhere"],
        ["--ca", "x.pem"],
        ["-h"],
        ["--help"],
        ["status", "3"],
        ["a", "--", "b"],
        ["--unknown-option", "-x"],
    ],
)
def test_run_everything_after_command_belongs_to_the_job(job_args: list[str]) -> None:
    args = parse(["run", "echo", *job_args])
    assert args.command == "echo"
    assert args.args == job_args
    assert args.url is None
    assert args.ca is None
    assert args.json is False


# argparse would take a "--" after CMD as its own end-of-options marker, so
# `worker run rm -- -f` would run `rm -f`.
@pytest.mark.parametrize("job_args", [["--", "hi"], ["--"], ["--", "-f", "--"]])
def test_run_keeps_double_dash_right_after_command(job_args: list[str]) -> None:
    args = parse(["run", "echo", *job_args])
    assert args.command == "echo"
    assert args.args == job_args


def test_run_client_options_before_command() -> None:
    args = parse(["run", "--url", "https://h:1", "--ca", "my.pem", "--json", "ls"])
    assert (args.url, args.ca, args.json) == ("https://h:1", "my.pem", True)
    assert (args.command, args.args) == ("ls", [])


def test_run_without_command_is_usage_error() -> None:
    with pytest.raises(UsageError):
        parse(["run"])


# --- status / out / kill ----------------------------------------------------


@pytest.mark.parametrize("action", ["status", "out", "kill"])
@pytest.mark.parametrize("job", ["12", "build", "_x.y-2"])
def test_job_actions_take_an_id_or_a_name(action: str, job: str) -> None:
    args = parse([action, job])
    assert args.action == action
    assert args.job == job
    assert args.json is False


@pytest.mark.parametrize(("alias", "action"), [("logs", "out"), ("ps", "list")])
def test_aliases_are_their_actions(alias: str, action: str) -> None:
    assert parse([alias, *(["3"] if action == "out" else [])]).action == action


@pytest.mark.parametrize(
    "argv",
    [["--json", "status", "3"], ["status", "3", "--json"], ["status", "--json", "3"]],
)
def test_json_before_or_after_action(argv: list[str]) -> None:
    args = parse(argv)
    assert args.action == "status"
    assert args.job == "3"
    assert args.json is True


def test_options_before_action() -> None:
    args = parse(["--url", "U", "out", "1"])
    assert (args.action, args.job, args.url, args.ca, args.json) == (
        "out",
        "1",
        "U",
        None,
        False,
    )


def test_options_after_action() -> None:
    args = parse(["kill", "1", "--url", "U", "--ca", "C"])
    assert (args.action, args.job, args.url, args.ca) == ("kill", "1", "U", "C")


def test_option_after_action_is_not_reset_by_default() -> None:
    # The action's own copy of --url must not overwrite one given before it.
    args = parse(["--url", "U", "--ca", "C", "--json", "status", "3"])
    assert (args.url, args.ca, args.json) == ("U", "C", True)


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "a b"],
        ["status", "1abc"],
        ["status", "x" * 65],
        ["status", "-1"],
        ["status", "1.5"],
        ["out", ""],
        ["kill", "\u0661"],
        ["status"],
        ["status", "1", "2"],
        ["status", "1", "--bogus"],
        ["status", "1", "--url"],
    ],
)
def test_bad_job_action_is_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


# --- actions ----------------------------------------------------------------


def test_invalid_action() -> None:
    with pytest.raises(UsageError) as info:
        parse(["x"])
    assert info.value.message == "invalid action 'x'"


def test_no_args() -> None:
    with pytest.raises(UsageError):
        parse([])


def test_only_options_is_usage_error() -> None:
    with pytest.raises(UsageError):
        parse(["--json"])


@pytest.mark.parametrize("argv", [["help"], ["-h"], ["--help"], ["--json", "-h"]])
def test_help(argv: list[str]) -> None:
    with pytest.raises(HelpRequested) as shown:
        parse(argv)
    assert shown.value.text.startswith("usage: worker ")
    assert "  out, logs " in shown.value.text


def test_certs_takes_a_directory() -> None:
    args = parse(["certs", "some/dir"])
    assert (args.action, args.directory) == ("certs", "some/dir")
    with pytest.raises(UsageError):
        parse(["certs"])


# --- serve ------------------------------------------------------------------


def test_serve_defaults() -> None:
    args = parse(["serve"])
    assert args.action == "serve"
    assert args.host == DEFAULT_HOST
    assert args.port == DEFAULT_PORT
    assert args.users is None
    assert args.cert is None
    assert args.key is None
    assert args.kill_grace == DEFAULT_KILL_GRACE
    assert args.max_body == DEFAULT_MAX_BODY


def test_serve_options() -> None:
    args = parse(
        [
            "serve",
            "--host", "0.0.0.0",
            "--port", "9000",
            "--users", "u.txt",
            "--cert", "c.pem",
            "--key", "k.pem",
            "--kill-grace", "0.5",
            "--max-body", "4096",
        ]
    )  # fmt: skip
    assert (args.host, args.port, args.users, args.cert, args.key) == (
        "0.0.0.0",
        9000,
        "u.txt",
        "c.pem",
        "k.pem",
    )
    assert args.kill_grace == 0.5
    assert args.max_body == 4096


@pytest.mark.parametrize(("text", "port"), [("1", 1), ("65535", 65535)])
def test_serve_port_bounds(text: str, port: int) -> None:
    assert parse(["serve", "--port", text]).port == port


def test_serve_kill_grace_zero_is_allowed() -> None:
    assert parse(["serve", "--kill-grace", "0"]).kill_grace == 0.0


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "0"],
        ["serve", "--port", "65536"],
        ["serve", "--port", "-1"],
        ["serve", "--port", "http"],
        ["serve", "--port", "80.5"],
        ["serve", "--port", ""],
        ["serve", "--port"],
        ["serve", "--kill-grace", "-1"],
        ["serve", "--kill-grace", "soon"],
        ["serve", "--kill-grace", "nan"],
        ["serve", "--kill-grace", "inf"],
        ["serve", "--kill-grace", "1e400"],
        ["serve", "--max-body", "0"],
        ["serve", "--max-body", "1k"],
        ["serve", "--bogus"],
        ["serve", "extra"],
        ["serve", "--json"],
    ],
)
def test_serve_bad_options(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(argv)


# --- client_config ----------------------------------------------------------


def client_args(*argv: str) -> argparse.Namespace:
    return parse([*argv, "status", "1"])


def test_client_config_defaults() -> None:
    config = client_config(client_args(), {})
    assert (config.user, config.password) == DEMO_USER == ("alice", "wonderland")
    assert config.url == DEFAULT_URL
    assert config.ca_file == str(demo_file(DEMO_CA))
    assert Path(config.ca_file).is_file()
    assert config.json is False


def test_client_config_user_and_password_from_env() -> None:
    config = client_config(client_args(), {"WORKER_USER": "bob", "WORKER_PASSWORD": "builder"})
    assert (config.user, config.password) == ("bob", "builder")


def test_client_config_user_without_password() -> None:
    with pytest.raises(UsageError, match="WORKER_PASSWORD"):
        client_config(client_args(), {"WORKER_USER": "bob"})


def test_client_config_password_without_user() -> None:
    with pytest.raises(UsageError, match="WORKER_USER"):
        client_config(client_args(), {"WORKER_PASSWORD": "builder"})


def test_client_config_url_and_ca_from_env() -> None:
    env = {"WORKER_URL": "https://env:1", "WORKER_CA": "/env/ca.pem"}
    config = client_config(client_args(), env)
    assert config.url == "https://env:1"
    assert config.ca_file == "/env/ca.pem"


def test_client_config_flags_beat_env() -> None:
    env = {"WORKER_URL": "https://env:1", "WORKER_CA": "/env/ca.pem"}
    config = client_config(client_args("--url", "https://flag:2", "--ca", "/flag/ca.pem"), env)
    assert config.url == "https://flag:2"
    assert config.ca_file == "/flag/ca.pem"


def test_client_config_url_flag_after_action_beats_env() -> None:
    args = parse(["status", "1", "--url", "https://flag:2"])
    config = client_config(args, {"WORKER_URL": "https://env:1"})
    assert config.url == "https://flag:2"


def test_client_config_json_flag() -> None:
    assert client_config(client_args("--json"), {}).json is True
