"""Starting the executor process (parent side) and its entry point (child side)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess

from worker.config import ExecutorConfig


def start_executor(ctx: SpawnContext, conn: Connection, config: ExecutorConfig) -> SpawnProcess:
    process = ctx.Process(
        target=executor_main, args=(conn, config), name="worker-executor", daemon=False
    )
    process.start()
    return process


def executor_main(conn: Connection, config: ExecutorConfig) -> None:
    from worker.executor.server import serve

    logging.basicConfig(level=logging.WARNING, format="worker executor: %(message)s")
    # Own the descriptor as a socket so asyncio can drive it without blocking.
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    asyncio.run(serve(sock, config))
