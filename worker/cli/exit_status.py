"""How the CLI exits, in the manner of httpie's ExitStatus."""

from __future__ import annotations

import enum

from worker.errors import UsageError, WorkerError


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1  # the server said no, or could not be reached
    USAGE = 2  # the command line is wrong
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def exit_status_for(error: WorkerError) -> ExitStatus:
    return ExitStatus.USAGE if isinstance(error, UsageError) else ExitStatus.ERROR
