"""Contexts: named servers in the client config (a temporary one: tests
never read the real ~/.config); flags beat the environment, which beats
the file; no plain passwords unless the file says so."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tests.cli.mockenv import run
from worker.cli.main import DEMO_USER, client_config
from worker.cli.parser import parse
from worker.errors import ConfigError, UsageError

CONFIG = """\
# my servers
current = "local"

[contexts.local]
url = "https://127.0.0.1:9001"
user = "carol"
password_env = "CAROL_PASSWORD"

[contexts.prod]
url = "https://prod.example:8443"
ca = "~/prod-ca.pem"
user = "dave"
password_command = "printf 'se cret\\n'"
"""


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose client config is a temporary file."""
    (tmp_path / "worker").mkdir()
    path = tmp_path / "worker" / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    return {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path), "CAROL_PASSWORD": "tea"}


def config_for(environ: dict[str, str], *flags: str):  # type: ignore[no-untyped-def]
    return client_config(parse([*flags, "status", "1"]), environ)


def test_the_current_context_is_used(home: dict[str, str]) -> None:
    config = config_for(home)
    assert (config.url, config.user, config.password) == ("https://127.0.0.1:9001", "carol", "tea")


def test_a_context_flag_picks_another_and_runs_its_password_command(
    home: dict[str, str],
) -> None:
    config = config_for(home, "--context", "prod")
    assert (config.url, config.user, config.password) == (
        "https://prod.example:8443",
        "dave",
        "se cret",
    )
    assert config.ca_file == os.path.join(home["HOME"], "prod-ca.pem")


def test_worker_context_variable_picks_one(home: dict[str, str]) -> None:
    assert config_for({**home, "WORKER_CONTEXT": "prod"}).user == "dave"


def test_the_environment_beats_the_file(home: dict[str, str]) -> None:
    environ = {**home, "WORKER_URL": "https://env:1", "WORKER_USER": "bob", "WORKER_PASSWORD": "b"}
    config = config_for(environ)
    assert (config.url, config.user, config.password) == ("https://env:1", "bob", "b")


def test_a_context_flag_beats_the_environment_and_other_flags_beat_it(
    home: dict[str, str],
) -> None:
    environ = {**home, "WORKER_URL": "https://env:1", "WORKER_USER": "bob", "WORKER_PASSWORD": "b"}
    config = config_for(environ, "--context", "prod")
    assert (config.url, config.user) == ("https://prod.example:8443", "dave")
    assert config_for(environ, "--context", "prod", "--url", "https://flag:2").url == (
        "https://flag:2"
    )


def test_no_file_means_the_old_defaults(tmp_path: Path) -> None:
    config = config_for({"XDG_CONFIG_HOME": str(tmp_path)})
    assert (config.user, config.password) == DEMO_USER


def test_an_unknown_context_is_a_usage_error(home: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"no context 'nope'.*local, prod"):
        config_for(home, "--context", "nope")


def test_plain_passwords_are_refused_unless_allowed(home: dict[str, str]) -> None:
    path = Path(home["XDG_CONFIG_HOME"]) / "worker" / "config.toml"
    path.write_text('[contexts.x]\nuser = "eve"\npassword = "plain"\n')
    with pytest.raises(ConfigError, match="plain password is refused"):
        config_for(home, "--context", "x")
    path.write_text('[contexts.x]\nuser = "eve"\npassword = "plain"\nallow_plain_password = true\n')
    assert config_for(home, "--context", "x").password == "plain"


def test_a_password_command_in_a_file_others_may_write_is_not_run(home: dict[str, str]) -> None:
    path = Path(home["XDG_CONFIG_HOME"]) / "worker" / "config.toml"
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="may be written by others"):
        config_for(home, "--context", "prod")


def test_context_ls_and_use(home: dict[str, str]) -> None:
    status, env = run("context", "ls", environ=home, terminal=False)
    assert status == 0
    assert env.out.splitlines()[1:] == [
        "* local  https://127.0.0.1:9001  carol  $CAROL_PASSWORD",
        "  prod   https://prod.example:8443  dave  command",
    ]
    assert run("context", "use", "prod", environ=home)[0] == 0
    path = Path(home["XDG_CONFIG_HOME"]) / "worker" / "config.toml"
    text = path.read_text()
    assert text.startswith('# my servers\ncurrent = "prod"\n')  # comments are kept
    assert tomllib.loads(text)["current"] == "prod"
    assert path.stat().st_mode & 0o777 == 0o600
    assert config_for(home).user == "dave"
    assert run("context", "use", "nope", environ=home)[0] == 2
