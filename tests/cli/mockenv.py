"""A made-up terminal for running the CLI in-process, as httpie's tests do
with their MockEnvironment: say whether stdout, stderr and stdin are
terminals and how wide, then read back exactly what was printed."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from worker.cli import main
from worker.cli.environment import Environment


class MockEnvironment(Environment):
    def __init__(
        self,
        *,
        terminal: bool = True,
        width: int = 100,
        environ: Mapping[str, str] | None = None,
        stdin: str = "",
        cwd: str | None = None,
        **overrides: Any,
    ) -> None:
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        super().__init__(
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
            stdin_isatty=overrides.pop("stdin_isatty", terminal),
            stdout_isatty=overrides.pop("stdout_isatty", terminal),
            stderr_isatty=overrides.pop("stderr_isatty", terminal),
            environ=dict(environ or {}),
            width=width,
            colors=False,
            cwd=cwd,
        )
        assert not overrides, overrides

    @property
    def out_bytes(self) -> bytes:
        return self.stdout.buffer.getvalue()  # type: ignore[attr-defined,no-any-return]

    @property
    def out(self) -> str:
        return self.out_bytes.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined,no-any-return]


def run(
    *argv: str, env: MockEnvironment | None = None, **options: Any
) -> tuple[int, MockEnvironment]:
    """The CLI's exit status and the environment it printed to."""
    env = env or MockEnvironment(**options)
    return main.run(list(argv), env), env
