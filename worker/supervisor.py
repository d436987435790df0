"""The supervisor's decisions, apart from the processes: a loop over events
(a stop signal, a child's status message, a child's exit) that says what to
do. `worker serve` feeds it events from its real children (serve.py); the
tests feed it scripted ones, as honcho's manager tests do."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from worker.child import FAILED, READY

log = logging.getLogger("worker.serve")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class Signalled:
    """Signals arrived (several may come at once)."""

    signals: frozenset[int]


@dataclass(frozen=True, slots=True)
class Said:
    """A child's status message: ready (with what it says of itself) or
    failed to start (with why)."""

    kind: str
    role: str  # "api" or "executor"
    text: str


@dataclass(frozen=True, slots=True)
class Exited:
    """A child is gone."""

    role: str
    exitcode: int | None


Event = Signalled | Said | Exited


class Actions(Protocol):
    """What the loop makes happen; serve.py does it for real, tests record it."""

    def say(self, text: str) -> None: ...  # the listening line (stdout)
    def warn(self, text: str) -> None: ...  # a reason to stop (stderr)
    def ready(self, line: str) -> None: ...  # both children are up
    def reap_orphans(self) -> None: ...
    def kill_leftovers(self) -> None: ...  # the executor died: its jobs are ours


def supervise(events: Iterable[Event], actions: Actions, pids: dict[str, int | None]) -> int:
    """Run until a stop signal (0) or a failure (1); the exit status."""
    said: dict[str, str] = {}  # what each child said when it was ready
    for event in events:
        match event:
            case Signalled(signals):
                if signal.SIGCHLD in signals:
                    actions.reap_orphans()
                stops = signals & set(STOP_SIGNALS)
                if stops:
                    names = ", ".join(sorted(signal.Signals(n).name for n in stops))
                    log.info("%s received: stopping every job, then the server", names)
                    return 0
            case Said(kind, role, text) if kind == FAILED:
                actions.warn(text)
                return 1
            case Said(kind, role, text) if kind == READY:
                said[role] = text
                if len(said) == 2:
                    line = (
                        f"worker listening on {said['api']} (api pid {pids['api']}, executor "
                        f"pid {pids['executor']}); {said['executor']}"
                    )
                    actions.say(line)
                    actions.ready(said["api"])
            case Exited("executor", exitcode):
                actions.warn(
                    f"the executor process exited unexpectedly (exit code {exitcode}); "
                    "killing its jobs and stopping"
                )
                # The API stays up meanwhile, answering 503 with the reason.
                actions.kill_leftovers()
                return 1
            case Exited(role, exitcode):
                actions.warn(
                    f"the API process exited unexpectedly (exit code {exitcode}); stopping"
                )
                return 1
    return 1  # no more events: nothing left to watch
