"""What the API and the executor processes have in common: how the
supervisor starts them (parent side) and how each begins (child side), and
the messages they send up their status pipe.

Each child is started with multiprocessing's "spawn" (a fresh interpreter:
nothing of the supervisor's state is inherited), dies with the supervisor
(``PR_SET_PDEATHSIG``), leaves Ctrl-C and hangups to it, and is not dumpable,
so that no job (even one of the server's own user) can read its memory or
trace it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from worker import logs
from worker.config import LogConfig
from worker.linux import (
    SERVER_OOM_SCORE_ADJ,
    die_with_parent,
    not_dumpable,
    oom_score_adj,
    raise_open_files_limit,
)

READY = "ready"
FAILED = "failed"


def start_child(
    ctx: SpawnContext, name: str, main: Callable[..., None], *args: Any
) -> SpawnProcess:
    """Start ``main(*args, parent_pid)`` in a new process named ``name``,
    logging as this process does."""
    arguments = (main, logs.current(), *args, os.getpid())
    process = ctx.Process(target=_entry, args=arguments, name=name, daemon=False)
    process.start()
    return process


def _entry(main: Callable[..., None], log: LogConfig, *args: Any) -> None:
    logs.adopt(log)
    main(*args)


def begin(role: str, parent_pid: int) -> int:
    """The first steps of a child; the open-files limit it now has."""
    logs.configure(logs.current(), role)
    # The supervisor alone decides when we stop, with SIGTERM: Ctrl-C and a
    # terminal hangup reach the whole process group, and must not race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    die_with_parent(parent_pid)
    not_dumpable()
    oom_score_adj(SERVER_OOM_SCORE_ADJ)  # jobs are likelier victims than the server
    return raise_open_files_limit()


class Status:
    """The child's end of the status pipe to the supervisor."""

    def __init__(self, conn: Connection, role: str) -> None:
        self._conn = conn
        self._role = role

    def ready(self, text: str) -> None:
        self._conn.send((READY, self._role, text))

    def failed(self, text: str) -> None:
        self._conn.send((FAILED, self._role, text))
