"""The API's front door: the one place that reaches into Sanic's connection
handling (its ``HttpProtocol``), to let in only what the server can afford.

Sanic runs without TLS of its own. For each accepted socket this protocol:

- closes it at once, before any TLS byte, unless the peer is a loopback address;
- admits it to the connection table, which may shed an older connection (or
  refuse this one) to stay within its caps;
- does the TLS handshake itself (``loop.connect_accepted_socket``), within
  its deadline, and only then hands the TLS transport to Sanic, which so sees
  an ordinary TLS connection (``conn_info.ssl``, ``request.scheme ==
  "https"``, the peer's address);
- replaces Sanic's timeouts, which restart with every byte received, by
  deadlines that more bytes cannot push back (see ``deadlines``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from time import monotonic, perf_counter
from typing import Any, ClassVar

from sanic import Sanic
from sanic.exceptions import RequestTimeout, ServiceUnavailable
from sanic.http import Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from worker.api.connections import ConnectionTable
from worker.api.deadlines import TLS_SHUTDOWN_TIMEOUT, Deadlines, Wait
from worker.api.memory import Trimmer
from worker.api.origin import is_loopback
from worker.errors import RateLimited

log = logging.getLogger("worker.api")

# Set on a connection's ``conn_info.ctx`` once a request on it authenticated.
_AUTHENTICATED = "authenticated"
# Takes the end of the accepted sockets' first transports.
_DISCARD = asyncio.Protocol()
_ANSWERING = (Stage.HANDLER, Stage.RESPONSE, Stage.FAILED)


def mark_authenticated(connection: Any, user: str) -> None:
    """Say that ``connection`` (a request's ``conn_info``) belongs to
    ``user``, who logged in: it is then among the last to be shed when the
    connection caps are reached. ``RateLimited`` if that user holds too many
    connections already. Fits ``Gate.on_authenticated``."""
    member = getattr(connection.ctx, "member", None)
    if member is not None and not member.door.table.assign(member, user):
        most = member.door.table.max_per_user
        raise RateLimited(f"too many open connections for {user} (at most {most})", 1000)
    setattr(connection.ctx, _AUTHENTICATED, True)


class FrontDoor:
    """What every connection shares: the TLS context, the table, the deadlines."""

    def __init__(self, tls: ssl.SSLContext, table: ConnectionTable, deadlines: Deadlines) -> None:
        self.tls = tls
        self.table = table
        self.deadlines = deadlines
        self.trimmer: Trimmer | None = None

    def install(self, app: Sanic[Any, Any]) -> type[HttpProtocol]:
        """Hook the door into ``app``; return the protocol for ``app.run``."""

        async def start(_app: Any) -> None:
            self.trimmer = Trimmer(asyncio.get_running_loop())

        async def stop(_app: Any) -> None:
            # Sanic closes the connections it knows; those still in their
            # handshake are ours.
            pending = [member for member in self.table if isinstance(member, GuardedProtocol)]
            tasks = [task for member in pending if (task := member.stop_handshake()) is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=TLS_SHUTDOWN_TIMEOUT)
            if self.trimmer is not None:
                self.trimmer.cancel()

        app.register_listener(start, "before_server_start")
        app.register_listener(stop, "after_server_stop")
        return type("FrontDoorProtocol", (GuardedProtocol,), {"__slots__": (), "door": self})

    def closed(self) -> None:
        if self.trimmer is not None:
            self.trimmer.closed()


class GuardedProtocol(HttpProtocol):
    door: ClassVar[FrontDoor]

    __slots__ = (
        "_accepted",
        "_established",
        "_handshake",
        "_head_from",
        "_left",
        "_received",
        "_socket",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._socket: socket.socket | None = None
        self._handshake: asyncio.Task[None] | None = None
        self._established = False
        self._left = False
        self._accepted = self._head_from = 0.0
        self._received = 0

    # --- accept and TLS ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._socket is not None:  # the second time: TLS is up
            self._established = True
            super().connection_made(transport)  # type: ignore[no-untyped-call]
            if self.conn_info is not None:
                self.conn_info.ctx.member = self  # for mark_authenticated
            return
        # The accepted socket, before a byte of it is read. Start TLS on a
        # copy of it, which nobody reads until the TLS layer does: the
        # client's first bytes (its TLS hello) must all reach that layer,
        # and this transport starts reading as soon as we return.
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else None
        admitted = is_loopback(address) and self.door.table.admit(self, str(address))
        if admitted:
            raw = transport.get_extra_info("socket")
            try:
                self._socket = socket.socket(fileno=os.dup(raw.fileno()))
            except OSError:  # out of descriptors, or the peer is already gone
                self._leave()
                admitted = False
        else:
            self._left = True  # never counted
        transport.set_protocol(_DISCARD)  # this copy's end is not ours to see
        transport.abort()  # type: ignore[attr-defined]
        if admitted:
            self._accepted = self._head_from = monotonic()
            self._handshake = self.loop.create_task(self._secure())

    async def _secure(self) -> None:
        assert self._socket is not None
        try:
            await self.loop.connect_accepted_socket(
                lambda: self,
                self._socket,
                ssl=self.door.tls,
                ssl_handshake_timeout=self.door.deadlines.handshake,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
            )
        except asyncio.CancelledError:
            self._abandon()  # shed, or the server is stopping
        except Exception:  # refused, timed out, or the peer went away
            self._abandon()
        finally:
            self._handshake = None

    def _abandon(self) -> None:
        if self._socket is not None:
            self._socket.close()  # a no-op once the transport owns it
        self._leave()

    def stop_handshake(self) -> asyncio.Task[None] | None:
        """Abandon a handshake in progress; the task to await, if any."""
        task = self._handshake
        if task is not None and not self._established:
            self.door.table.leave(self)
            self.shed()
        return task

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        if self._established:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]

    def _leave(self) -> None:
        if not self._left:
            self._left = True
            self.door.table.leave(self)
            self.door.closed()

    # --- the connection table's view (connections.Member) -----------------

    def is_authenticated(self) -> bool:
        connection = self.conn_info
        if connection is None:
            return False
        context = connection.ctx
        # Until the gate calls mark_authenticated, its memo of the credentials
        # verified on this connection (``auth``) says the same.
        return bool(getattr(context, _AUTHENTICATED, False) or getattr(context, "auth", None))

    def is_idle(self) -> bool:
        http = self.http
        return http is not None and http.stage is Stage.IDLE and not self.recv_buffer

    def is_busy(self) -> bool:
        http = self.http
        return http is not None and http.stage in _ANSWERING

    def shed(self) -> None:
        self._left = True  # the table has forgotten it already
        self.door.closed()
        if self._established:
            if self.transport is not None:
                self.transport.abort()
        elif self._handshake is not None:
            self._handshake.cancel()
            if self._socket is not None:
                self._socket.close()  # if the task never ran; else a no-op

    # --- deadlines ------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        http = self.http
        stage = http.stage if http is not None else None
        reading = getattr(http, "request_body", None)
        # The first byte of a later request starts its head's clock; the first
        # request's clock started at accept.
        starts_head = self._received and stage is Stage.IDLE and not reading
        # Sanic's ``_time`` is the last activity either way; bytes that come
        # while the server answers a complete request (the next request,
        # trickled) must not keep alive an answer the client does not take.
        answering = stage in _ANSWERING and not (stage is Stage.HANDLER and reading)
        last = self._time
        super().data_received(data)
        if starts_head:
            self._head_from = self._time
        if answering:
            self._time = last
        self._received += len(data)

    def check_timeouts(self) -> None:
        """Sanic's periodic check, with deadlines instead of idle timers."""
        try:
            self._callback_check_timeouts = None
            http = self.http
            if not self._task or http is None:
                return
            now = monotonic()
            wait, due = self._waiting_for(http, now)
            deadlines = self.door.deadlines
            # Looking again even after a deadline passed: the answer to it
            # may be followed by more waiting (Sanic reads the rest of a body
            # it refused), which has its deadline too.
            self._callback_check_timeouts = self.loop.call_later(
                deadlines.next_check(now, due), self.check_timeouts
            )
            if now < due:
                return
            if wait is Wait.HEAD:
                http.exception = RequestTimeout(
                    f"the request headers did not arrive within {deadlines.header:g} seconds"
                )
            elif wait is Wait.BODY:
                http.exception = RequestTimeout(
                    f"the request body arrived slower than {deadlines.min_body_rate:g} bytes/s"
                )
            elif wait is Wait.SERVER:
                http.exception = ServiceUnavailable("Response Timeout")
            self._task.cancel()
        except Exception:
            log.exception("checking a connection's deadlines failed")

    def _waiting_for(self, http: Any, now: float) -> tuple[Wait, float]:
        deadlines = self.door.deadlines
        started = getattr(http, "perft0", None)
        if started is not None and getattr(http, "request_body", None):
            # Head parsed at ``started`` (perf_counter's clock), body unfinished.
            received = http.request_bytes - http.request_bytes_left + len(self.recv_buffer)
            return Wait.BODY, deadlines.body_due(now - (perf_counter() - started), received)
        stage = http.stage
        if stage is Stage.REQUEST or (
            stage is Stage.IDLE and (not self._received or self.recv_buffer)
        ):
            return Wait.HEAD, deadlines.head_due(self._head_from)
        if stage is Stage.IDLE:
            return Wait.IDLE, deadlines.idle_due(self._time)
        return Wait.SERVER, self._time + self.response_timeout
