"""The CLI is built on the client package without paying, at start-up, for
what it does not use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("worker.client.results", "worker.client.client", "rich", "asyncio", "email")


def test_the_cli_path_imports_nothing_heavy() -> None:
    code = (
        "import sys, worker.cli.main, worker.cli.client_commands, worker.cli.waiting\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"
