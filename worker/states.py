"""A job's states and the moves between them, as supervisor's states.py
keeps its process states: dependency-free, so the executor, the API, the
protocol and the client all mean the same thing by them.

    RUNNING --> COMPLETED | FAILED | KILLED        (each final: no move out)

A job is RUNNING from the moment it is accepted (it may still fail to
start: that is FAILED); the executor moves it once, through ``move``,
which refuses any other move loudly instead of letting it pass.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    def __reduce_ex__(self, protocol: object) -> tuple[type[JobStatus], tuple[str]]:
        # By value, as newer Pythons do. Older 3.11 releases (Debian 12's
        # 3.11.2) pickle members as getattr(cls, name), which the
        # protocol's restricted unpickler rightly refuses.
        return (JobStatus, (self._value_,))


ACTIVE_STATES = frozenset({JobStatus.RUNNING})
FINAL_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED})
KILLABLE_STATES = ACTIVE_STATES

# Where each state may go.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: FINAL_STATES,
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.KILLED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A move the state model does not allow: a bug, never a user's error."""


def move(current: JobStatus, new: JobStatus) -> JobStatus:
    """``new``, if the model allows going there from ``current``."""
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"a job cannot go from {current.value} to {new.value}")
    return new
