"""Starting the executor process (parent side) and its entry point (child side)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess

from worker.config import ExecutorConfig


def start_executor(ctx: SpawnContext, conn: Connection, config: ExecutorConfig) -> SpawnProcess:
    process = ctx.Process(
        target=executor_main,
        args=(conn, config, os.getpid()),
        name="worker-executor",
        daemon=False,
    )
    process.start()
    return process


def _ignore(_signum: int, _frame: object) -> None:
    pass


def executor_main(conn: Connection, config: ExecutorConfig, parent_pid: int) -> None:
    from worker.executor.cgroups import CgroupTree
    from worker.executor.server import serve
    from worker.linux import become_subreaper, die_with_parent, raise_open_files_limit

    logging.basicConfig(level=logging.WARNING, format="worker executor: %(message)s")
    # Ctrl-C and hangups are for the supervisor. Handled (not ignored), so
    # that jobs, which inherit ignored signals, start with the defaults.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _ignore)
    # SIGTERM, handled like any stop: the jobs are killed, then we exit.
    die_with_parent(parent_pid)
    # Orphans of jobs come to us instead of init: we can find and kill them
    # as part of their job, and we reap them.
    adopt_orphans = become_subreaper()
    raise_open_files_limit()
    if config.use_cgroups:
        cgroups, how = CgroupTree.detect()
    else:
        cgroups, how = None, "sessions and descendants (--no-cgroups)"
    logging.getLogger("worker.executor").info("job processes are tracked by %s", how)
    # Own the descriptor as a socket so asyncio can drive it without blocking.
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    asyncio.run(serve(sock, config, adopt_orphans=adopt_orphans, cgroups=cgroups))
