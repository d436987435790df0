"""Starting the executor process (parent side) and its entry point (child side)."""

from __future__ import annotations

import asyncio
import os
import socket
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess

from worker.child import Status, begin, start_child
from worker.config import ExecutorConfig


def start_executor(
    ctx: SpawnContext, conn: Connection, status_conn: Connection, config: ExecutorConfig
) -> SpawnProcess:
    return start_child(ctx, "worker-executor", executor_main, conn, status_conn, config)


def executor_main(
    conn: Connection, status_conn: Connection, config: ExecutorConfig, parent_pid: int
) -> None:
    from worker.executor.cgroups import CgroupTree
    from worker.executor.server import serve
    from worker.linux import become_subreaper

    begin("executor", parent_pid)
    # Orphans of jobs come to us instead of init: we can find and kill them
    # as part of their job, and we reap them.
    adopt_orphans = become_subreaper()
    if config.use_cgroups:
        cgroups, how = CgroupTree.detect()
    else:
        cgroups, how = None, "no cgroups (--no-cgroups): jobs tracked by session and descent"
    # Own the descriptor as a socket so asyncio can drive it without blocking.
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    status = Status(status_conn, "executor")
    asyncio.run(serve(sock, config, status, how, adopt_orphans=adopt_orphans, cgroups=cgroups))
