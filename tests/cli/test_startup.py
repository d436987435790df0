"""The short commands' start-up: `worker status ID` and `worker run -w CMD`
build their own action's parser only and import nothing they do not use.
(How fast that is belongs to bench/: cli_status, cli_run_wait.)"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import worker
from worker import config as server_config
from worker.cli import parser, parsers
from worker.cli.actions import BY_NAME, JOB_ONLY, NO_ARGUMENTS
from worker.client.config import DEFAULT_URL, ClientConfig
from worker.resources import DEMO_CA, demo_path

# Each costs a short command a millisecond or more, and neither a status
# nor a run needs it.
UNUSED = (
    "typing",
    "dataclasses",
    "inspect",
    "shutil",
    "urllib.parse",
    "ipaddress",
    "encodings.idna",
    "contextlib",
    "pathlib",
    "importlib",
    "worker.config",
    "worker.client.client",
    "worker.client.results",
    "rich",
    "email",
    "asyncio",
    "ssl",  # the client speaks TLS through _ssl (worker/client/tls.py)
    "socket",  # and connects through _socket (worker/client/http11.py)
    "selectors",
)

# Parse, configure and make the client of each command, as `worker` would,
# short of connecting; then say which of UNUSED got imported.
PROBE = """
import json, sys
from worker.cli import main
from worker.cli.client_commands import client_command
from worker.cli.waiting import run_and_wait
from worker.client.api import Api
for argv in json.loads(sys.argv[1]):
    args = main.parse(argv)
    Api.from_config(main.client_config(args, {"WORKER_CA": sys.argv[2]})).close()
print(json.dumps(sorted(name for name in json.loads(sys.argv[3]) if name in sys.modules)))
"""


@pytest.mark.parametrize(
    ("commands", "unused"),
    [
        # A plain line builds no parser, nor imports argparse (nor gettext,
        # nor its locale lookups).
        ([["status", "1"]], (*UNUSED, "argparse", "gettext", "locale")),
        ([["run", "-w", "true"]], (*UNUSED, "argparse", "gettext", "locale")),
        ([["status", "1"], ["run", "-w", "true"], ["--json", "out", "-f", "3"]], UNUSED),
    ],
)
def test_status_and_run_import_nothing_they_do_not_use(
    commands: list[list[str]], unused: tuple[str, ...]
) -> None:
    # -S: only what the command imports, not what an editable install's
    # import hook or a .pth file brings; worker is found where it is.
    where = os.path.dirname(os.path.dirname(os.path.abspath(worker.__file__)))
    probe = [sys.executable, "-S", "-c", PROBE, json.dumps(commands), demo_path(DEMO_CA)]
    shown = subprocess.run(
        [*probe, json.dumps(unused)],
        env={**os.environ, "PYTHONPATH": where},
        cwd=where,  # -c puts the current directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(shown.stdout) == []


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["status", "build"], {"status"}),
        (["--json", "run", "-w", "--timeout", "5", "true"], {"run"}),
        (["logs", "-f", "3"], {"out", "logs"}),
        (["--url", "https://h:1", "kill", "3"], {"kill"}),
    ],
)
def test_a_command_builds_its_own_actions_parser_only(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], built: set[str]
) -> None:
    roots: list[parsers.Root] = []
    real_build = parser.build

    def spy(*args: object, **kwargs: bool) -> parsers.Root:
        roots.append(real_build(*args, **kwargs))  # type: ignore[arg-type]
        return roots[-1]

    monkeypatch.setattr(parser, "build", spy)
    parser.parse(argv)
    assert [set(root.choices) for root in roots] == [built]


@pytest.mark.parametrize("name", sorted(JOB_ONLY | NO_ARGUMENTS))
@pytest.mark.parametrize("json_at", [None, 0, 1, 2])
def test_a_plain_line_is_what_argparse_makes_of_it(name: str, json_at: int | None) -> None:
    argv = [name, "12"] if name in JOB_ONLY else [name]
    if json_at is not None:
        argv.insert(json_at, "--json")
    plain = parser._plain(argv)
    assert plain is not None
    whole, extra = parser.build(name).parse_known_args(argv)
    assert (vars(plain), extra) == (vars(whole), [])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "true"],
        ["run", "-w", "true", "a", "-x"],
        ["--json", "run", "--wait", "-w", "ls", "--json"],
        ["run", "run", "--", "status"],
    ],
)
def test_a_plain_run_line_is_what_argparse_makes_of_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    plain = parser._plain(argv)
    assert plain is not None
    monkeypatch.setattr(parser, "_plain", lambda argv: None)
    assert vars(plain) == vars(parser.parse(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "build"],
        ["status", "-1"],
        ["status", "1", "2"],
        ["status"],
        ["status", "1", "--url", "https://h:1"],
        ["--json", "--json", "status", "1"],
        ["status", "1", "-h"],
        ["health", "x"],
        ["run", "--", "true"],
        ["run", "-w"],
        ["run", "--cwd", ".", "true"],
        ["run", "-w", "--json"],
        ["--json", "--json", "run", "true"],
        ["1", "status"],
    ],
)
def test_any_other_line_goes_to_argparse(argv: list[str]) -> None:
    assert parser._plain(argv) is None


def test_a_line_argparse_reads_otherwise_is_parsed_as_it_always_was() -> None:
    # `--con` is --context, abbreviated: its value is the word taken for the
    # action here, and `list` is the action argparse finds.
    argv = ["--con", "status", "list"]
    args = parser.parse(argv)
    whole, _ = parser.build("status").parse_known_args(argv)
    assert vars(args) == vars(whole)
    assert (args.action, args.context) == ("list", "status")


def test_typos_still_get_a_suggestion_from_every_action() -> None:
    with pytest.raises(parser.CommandLineError, match=r"did you mean 'status'"):
        parser.parse(["stauts", "1"])


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-3", "57", "200"])
def test_help_is_as_wide_as_shutil_says(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert parsers.columns() == shutil.get_terminal_size().columns


def test_every_action_is_known_by_name_and_alias() -> None:
    assert set(parser.build(every=True).choices) == set(BY_NAME)


def test_the_client_default_url_is_the_servers() -> None:
    assert DEFAULT_URL == server_config.DEFAULT_URL


def test_the_client_config_is_immutable_and_hides_the_password() -> None:
    config = ClientConfig(url=DEFAULT_URL, ca_file="ca.pem", user="alice", password="secret")
    with pytest.raises(AttributeError):
        config.url = "https://elsewhere:1"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del config.user
    with pytest.raises(AttributeError):
        config.other = 1  # type: ignore[attr-defined]
    assert (config.json, config.timeout) == (False, 30.0)
    same = ClientConfig(url=DEFAULT_URL, ca_file="ca.pem", user="alice", password="secret")
    assert config == same and hash(config) == hash(same)
    assert config != ClientConfig(url=DEFAULT_URL, ca_file="ca.pem", user="bob", password="x")
    assert "secret" not in repr(config)


def test_the_cli_exits_with_everything_it_printed(tmp_path: Path) -> None:
    """A client action leaves without tearing the interpreter down: what it
    printed is flushed first. (Port 1 of loopback: nothing listens there.)"""
    argv = ["--json", "--url", "https://127.0.0.1:1", "--ca", demo_path(DEMO_CA), "status", "1"]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("WORKER_CONTEXT", None)
    done = subprocess.run(
        [sys.executable, "-m", "worker", *argv],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"].startswith("cannot connect to https://127.0.0.1:1")
    assert done.stderr == b""


def test_argparse_still_asks_shutil_for_its_width() -> None:
    """columns stands in for what argparse's HelpFormatter does itself; if
    a Python changes that, the help's width would differ."""
    import inspect

    source = inspect.getsource(argparse.HelpFormatter.__init__)
    assert "shutil.get_terminal_size().columns" in source
    assert "width -= 2" in source
