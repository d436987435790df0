"""A job's resource limits, and the server's defaults and maxima for them.

Pure values and arithmetic: what a job asked for, what it gets once the
server's defaults fill in what it did not ask, and a clear refusal where it
asks for more than the server allows. Enforcing them is controllers.py's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from worker.errors import BadRequest
from worker.protocol import Limits

NAMES = ("memory", "cpus", "pids", "io_read_bps", "io_write_bps", "io_weight")
# Which controller each limit needs (its v2 name; v1 calls io "blkio").
CONTROLLER = {
    "memory": "memory",
    "cpus": "cpu",
    "pids": "pids",
    "io_read_bps": "io",
    "io_write_bps": "io",
    "io_weight": "io",
}


def given(limits: Limits) -> dict[str, float | int]:
    """The limits that are set, by name."""
    return {name: value for name in NAMES if (value := getattr(limits, name)) is not None}


def memory_of_host() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True, slots=True)
class Policy:
    """What a job gets when it asks nothing (``defaults``), and the most it
    may ask (``maxima``; None: no maximum)."""

    defaults: Limits
    maxima: Limits

    def resolve(self, asked: Limits) -> Limits:
        """The limits a job runs with; ``BadRequest`` naming the maximum
        where it asks for more than the server allows."""
        for name, value in given(asked).items():
            most = getattr(self.maxima, name)
            if most is not None and value > most:
                raise BadRequest(
                    f"'limits.{name}' of {_show(name, value)} is above this server's "
                    f"maximum of {_show(name, most)}"
                )
        filled = {
            name: getattr(self.defaults, name)
            for name in NAMES
            if getattr(asked, name) is None and getattr(self.defaults, name) is not None
        }
        return replace(asked, **filled)


def _show(name: str, value: float) -> str:
    if name == "memory":
        return f"{value / (1 << 20):g} MiB"
    if name.endswith("_bps"):
        return f"{value / (1 << 20):g} MiB/s"
    return f"{value:g}"


def host_defaults() -> Limits:
    """What a job gets unless it asks: a quarter of the host's memory, 4096
    processes."""
    from worker.config import DEFAULT_JOB_PIDS

    return Limits(memory=memory_of_host() // 4, pids=DEFAULT_JOB_PIDS)


def host_maxima() -> Limits:
    """The most a job may ask: the host's memory and cores, 32768 processes."""
    from worker.config import DEFAULT_MAX_JOB_PIDS

    return Limits(
        memory=memory_of_host(), cpus=float(os.cpu_count() or 1), pids=DEFAULT_MAX_JOB_PIDS
    )
