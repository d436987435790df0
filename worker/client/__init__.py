"""A Python client for the worker API: ``from worker.client import Client``.

::

    with Client.from_environment() as client:   # as the CLI finds its server
        job_id = client.run("sh", "-c", "echo hello; exit 3")
        for data in client.follow(job_id):
            print(data)
        print(client.wait(job_id).exit_code)

Names are loaded when first used, so that the CLI, built on the same
client, does not pay at start-up for the result classes it never builds.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING: importing typing costs the CLI
if TYPE_CHECKING:
    from typing import Any

    from worker.client.client import Client, Follow
    from worker.client.results import (
        Job,
        JobList,
        JobStatus,
        Killed,
        Limits,
        Output,
        RawOutput,
        Sent,
        Usage,
    )
    from worker.errors import ApiError, ConnectionFailed, UsageError, WorkerError

_WHERE = {
    "Client": "worker.client.client",
    "Follow": "worker.client.client",
    "Job": "worker.client.results",
    "JobList": "worker.client.results",
    "JobStatus": "worker.client.results",
    "Killed": "worker.client.results",
    "Limits": "worker.client.results",
    "Output": "worker.client.results",
    "RawOutput": "worker.client.results",
    "Sent": "worker.client.results",
    "Usage": "worker.client.results",
    "ApiError": "worker.errors",
    "ConnectionFailed": "worker.errors",
    "UsageError": "worker.errors",
    "WorkerError": "worker.errors",
}

__all__ = [
    "ApiError",
    "Client",
    "ConnectionFailed",
    "Follow",
    "Job",
    "JobList",
    "JobStatus",
    "Killed",
    "Limits",
    "Output",
    "RawOutput",
    "Sent",
    "Usage",
    "UsageError",
    "WorkerError",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # here: the CLI imports this package and never gets here

    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return list(__all__)
