"""Completion scripts come from the parser (shtab); the bash one is loaded
into a real bash and asked for completions."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.mockenv import run

BASH = shutil.which("bash")


def completions(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``""``: a new word)."""
    program = f"""
source {shlex.quote(str(script))}
COMP_WORDS=({" ".join(shlex.quote(w) for w in ("worker", *words))})
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
_shtab_worker worker "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    assert BASH is not None
    done = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if BASH is None:
        pytest.skip("no bash on this host")
    status, env = run("completion", "bash", terminal=False)
    assert status == 0
    path = tmp_path_factory.mktemp("completion") / "worker.bash"
    path.write_text(env.out)
    return path


def test_actions_complete(bash_script: Path) -> None:
    assert completions(bash_script, "st") == ["status"]
    offered = completions(bash_script, "")
    assert {"run", "status", "out", "logs", "wait", "kill", "list", "ps", "serve"} <= set(offered)


def test_an_actions_options_complete(bash_script: Path) -> None:
    assert completions(bash_script, "out", "--t") == ["--tail"]
    assert {"--signal", "--force", "--json"} <= set(completions(bash_script, "kill", "-"))
    assert completions(bash_script, "serve", "--log-f") == ["--log-format"]


def test_choices_complete(bash_script: Path) -> None:
    assert completions(bash_script, "completion", "") == ["bash", "zsh", "fish"]
    assert completions(bash_script, "serve", "--log-level", "w") == ["warning"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_script_of_theirs(shell: str) -> None:
    status, env = run("completion", shell, terminal=False)
    assert status == 0
    assert "follow" in env.out and "worker" in env.out
    if shell == "zsh":
        assert env.out.startswith("#compdef worker")
    else:
        assert "complete -c worker" in env.out
