"""What the CLI runs in: its streams, whether they are terminals, their
width, colour, the environment variables and the working directory.

Everything the CLI prints or reads goes through one ``Environment``, as in
httpie, so tests run the CLI in-process with a made-up terminal (see
tests/cli/mockenv.py) and read exactly what a person would have seen.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, TextIO

    from rich.console import Console


class Environment:
    """The process's own, unless told otherwise (tests)."""

    def __init__(
        self,
        *,
        stdin: IO[str] | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        stdin_isatty: bool | None = None,
        stdout_isatty: bool | None = None,
        stderr_isatty: bool | None = None,
        environ: Mapping[str, str] | None = None,
        width: int | None = None,
        colors: bool = True,
        cwd: str | None = None,
    ) -> None:
        self.stdin: IO[str] = stdin or sys.stdin
        self.stdout: TextIO = stdout or sys.stdout
        self.stderr: TextIO = stderr or sys.stderr
        self.stdin_isatty = _isatty(self.stdin) if stdin_isatty is None else stdin_isatty
        self.stdout_isatty = _isatty(self.stdout) if stdout_isatty is None else stdout_isatty
        self.stderr_isatty = _isatty(self.stderr) if stderr_isatty is None else stderr_isatty
        self.environ = os.environ if environ is None else environ
        self.width = width  # None: the terminal's own (or 80), as Rich finds it
        self.colors = colors and "NO_COLOR" not in self.environ  # as everywhere
        self.cwd = cwd  # None: the process's own, when first needed

    def directory(self) -> str:
        return self.cwd if self.cwd is not None else os.getcwd()

    def write_bytes(self, data: bytes) -> None:
        """Bytes to stdout exactly as given (a job's output)."""
        self.stdout.flush()
        self.stdout.buffer.write(data)
        self.stdout.buffer.flush()

    def console(self, stderr: bool = False, width: int | None = None) -> Console:
        """A Rich console on stdout (or stderr) that styles only a terminal."""
        from rich.console import Console

        file = self.stderr if stderr else self.stdout
        terminal = self.stderr_isatty if stderr else self.stdout_isatty
        return Console(
            file=file,
            force_terminal=terminal,
            no_color=not self.colors,
            color_system="auto" if self.colors else None,
            width=width or self.width,
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )


def config_path(environ: Mapping[str, str]) -> str | None:
    """Where the client config file is (see contexts.py), if anywhere."""
    if environ.get("WORKER_CONFIG"):
        return environ["WORKER_CONFIG"]
    base = environ.get("XDG_CONFIG_HOME")
    if not base:
        home = environ.get("HOME")
        if not home:
            return None
        base = os.path.join(home, ".config")
    return os.path.join(base, "worker", "config.toml")


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False
