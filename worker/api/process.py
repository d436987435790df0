"""Starting the API process (parent side) and its entry point (child side)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from worker.child import Status, begin, start_child
from worker.config import ApiConfig
from worker.errors import WorkerError


def start_api(
    ctx: SpawnContext, executor_conn: Connection, status_conn: Connection, config: ApiConfig
) -> SpawnProcess:
    return start_child(ctx, "worker-api", api_main, executor_conn, status_conn, config)


def api_main(
    executor_conn: Connection, status_conn: Connection, config: ApiConfig, parent_pid: int
) -> None:
    from worker.api.memory import pin_mmap_threshold

    open_files = begin("api", parent_pid)  # a socket per client, and followers are many
    status = Status(status_conn, "api")
    pin_mmap_threshold()
    executor_sock = socket.socket(fileno=os.dup(executor_conn.fileno()))
    executor_conn.close()
    try:
        app, listener, protocol = _prepare(config, executor_sock, open_files)
    except WorkerError as exc:
        status.failed(exc.message)
        raise SystemExit(1) from None

    async def announce(running: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, functools.partial(running.stop, terminate=False))
        status.ready(config.url)

    app.register_listener(announce, "after_server_start")

    app.run(
        sock=listener,
        protocol=protocol,  # it does the TLS, so Sanic is given none
        backlog=socket.SOMAXCONN,  # Sanic listens again, with 100 unless told
        single_process=True,
        access_log=False,
        motd=False,
        register_sys_signals=False,  # SIGTERM is ours (see announce)
    )


def _prepare(
    config: ApiConfig, executor_sock: socket.socket, open_files: int
) -> tuple[Any, socket.socket, type[asyncio.Protocol]]:
    """Everything that can fail on bad configuration, before serving starts."""
    from worker import secrets
    from worker.api.app import create_app
    from worker.api.auth import Authenticator, UserStore
    from worker.api.connections import ConnectionTable, fit_caps
    from worker.api.deadlines import Deadlines
    from worker.api.executor_client import ExecutorClient
    from worker.api.frontdoor import FrontDoor
    from worker.api.tls import server_context

    warnings = secrets.check({"users file": config.users_file, "TLS key": config.key_file})
    auth = Authenticator(UserStore.load(config.users_file))
    tls = server_context(config.cert_file, config.key_file)
    caps = fit_caps(config.max_connections, config.max_connections_per_peer, open_files)
    if caps[0] < config.max_connections:
        logging.getLogger("worker.api").warning(
            "at most %d connections (not %d): the open-files limit is %d",
            caps[0],
            config.max_connections,
            open_files,
        )
    table = ConnectionTable(*caps, max_per_user=config.max_connections_per_user)
    door = FrontDoor(tls, table, Deadlines.of(config))
    executor = ExecutorClient(config.executor_timeout)
    app = create_app(config, auth, executor)
    protocol = door.install(app)

    @app.before_server_start
    async def connect(_app: Any) -> None:
        await executor.connect(executor_sock)

    @app.after_server_start
    async def warn(_app: Any) -> None:
        for warning in warnings:
            logging.getLogger("worker.api").warning("%s", warning)

    @app.after_server_stop
    async def disconnect(_app: Any) -> None:
        await executor.close()
        auth.close()

    return app, bind(config.host, config.port), protocol


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise WorkerError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # As long as the kernel allows: under a flood of connects, a full queue
        # drops legitimate clients' SYNs too, and they retry only a second later.
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise WorkerError(f"cannot listen on {host}:{port}: {reason}") from exc
    return sock
