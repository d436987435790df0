"""`worker completion SHELL`: a completion script made by shtab from the
same parser as the help, so the two cannot drift apart."""

from __future__ import annotations

from worker.cli.parser import build


def script(shell: str) -> str:
    import shtab

    text: str = shtab.complete(build(every=True), shell=shell)
    return text if text.endswith("\n") else text + "\n"
