"""The README's one-minute tour, run as a script against a real server, so
its commands (and the IDs it uses) cannot drift from what the CLI does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import start_server, stop_server

README = Path(__file__).resolve().parents[2] / "README.md"


def tour() -> str:
    text = README.read_text()
    section = text[text.index("## A one-minute tour") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the tour's shell block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_tour_runs(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1")  # the default rate limit, as a user has
    try:
        bin_dir = str(Path(sys.executable).parent)  # where `worker` is installed
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
            "WORKER_URL": server.url,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # never the real one
        }
        env.pop("WORKER_USER", None)
        env.pop("WORKER_PASSWORD", None)
        script = "set -eu\n" + tour()
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=server.home(),  # `--cwd .` must be a directory alice's jobs may enter
            env=env,
            input=b"",
            capture_output=True,
            timeout=120,
            check=False,
        )
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 0, (out, err)
        assert "Client error" not in err and "Error:" not in err, err
        assert "hello ann\n" in out
        assert "testing\nexit code 3\n" in out
        assert f"CI=1 in {server.home()}\n" in out
        assert "error: echi: command not found" in out
        assert (server.home() / "out.bin").read_bytes() == b"hello\n"
    finally:
        stop_server(server.process)
