"""A job's end as a shell would give it: one exit code."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SIGTERM = 15


def exit_code_of(job: Mapping[str, Any]) -> int:
    """The job's own exit code, as a shell would give it: 128+N for signal N,
    127 when the command could not even start."""
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    if job.get("exit_code") is not None:
        code = int(job["exit_code"])
        if job.get("status") == "killed" and code == 0:
            return 128 + SIGTERM  # it obeyed the kill and exited 0
        return code
    return 127
