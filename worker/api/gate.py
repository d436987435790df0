"""Who may make a request: local peers, authenticated users, within the rate.

Applied to each route handler (Sanic's middleware machinery costs every
request more than these checks do). Requests that match no route are
answered by the error handler, which makes the same local-only check first.

Login attempts are told apart by *source*: every client is on loopback, so
the source is the Unix uid that owns the client's socket (peercred.py). Where
the kernel will not say (no sock_diag on this host), each connection is its
own source; where it will but cannot find this client's socket (it closed
already), all such clients share one source, so nobody gains by hiding.
"""

from __future__ import annotations

import functools
import hmac
import itertools
import logging
import math
import time
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from sanic import Request

from worker.api.auth import BAD_CREDENTIALS, Authenticator
from worker.api.loginlog import FailedLogins
from worker.api.origin import require_local
from worker.api.peercred import PeerUids
from worker.api.ratelimit import RateLimiter
from worker.api.tarpit import Tarpit
from worker.errors import RateLimited, Unauthorized

log = logging.getLogger("worker.api")

# How long a keep-alive connection may reuse its verified credentials
# without asking the credential cache again.
CONNECTION_AUTH_TTL = 60.0

Handler = Callable[..., Coroutine[Any, Any, Any]]
# Told (connection, user) each time a connection's authentication is recorded.
AuthenticatedHook = Callable[[Any, str], None]
# Told of each wrong user name or password (for metrics).
FailedLoginHook = Callable[[], None]

UNIDENTIFIED: Hashable = ("unidentified",)


def check_local(request: Request) -> None:
    """403 for a non-loopback peer; a connection's peer never changes, so
    each connection is checked once."""
    connection = request.conn_info
    if connection is not None and not getattr(connection.ctx, "local", False):
        require_local(connection.client_ip)
        connection.ctx.local = True


class Gate:
    def __init__(
        self,
        auth: Authenticator,
        limiter: RateLimiter,
        peers: PeerUids | None = None,
        tarpit: Tarpit | None = None,
    ) -> None:
        self._auth = auth
        self._limiter = limiter
        self._peers = PeerUids() if peers is None else peers
        self._tarpit = Tarpit() if tarpit is None else tarpit
        self._connections = itertools.count()
        self._failed_logins = FailedLogins()
        # Set by whoever needs to know when a connection has authenticated
        # (see ``connection_authenticated``).
        self.on_authenticated: AuthenticatedHook | None = None
        self.on_failed_login: FailedLoginHook | None = None

    def guard(self, handler: Handler, limited: bool = True) -> Handler:
        """``limited`` false: authenticated, but outside the rate limit (the
        request neither spends nor needs the user's allowance)."""

        @functools.wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
            await self.admit(request, limited)
            response = await handler(request, *args, **kwargs)
            if response is not None:  # else it streamed, with reply_headers of its own
                response.headers.update(reply_headers(request))
            return response

        return guarded

    async def admit(self, request: Request, limited: bool = True) -> None:
        # Cheapest refusal first: a remote peer learns nothing about users.
        check_local(request)
        connection = request.conn_info
        header = request.headers.get("authorization")
        user = _known_on_connection(connection, header)
        if user is None:
            try:
                user = await self._authenticate(connection, header)
            except RateLimited:
                request.ctx.refused = "login"
                raise
            if connection is not None and header is not None:
                self.connection_authenticated(connection, header, user)
        if limited:
            try:
                self._limiter.admit(user)
            except RateLimited:
                request.ctx.refused = "rate_limit"  # which limit said 429, for metrics
                raise
            request.ctx.limiter = self._limiter
        request.ctx.user = user
        if log.isEnabledFor(logging.DEBUG):  # an access log, for operators who ask
            log.debug("%s %s %s", user, request.method, request.path, extra={"user": user})

    async def _authenticate(self, connection: Any, header: str | None) -> str:
        try:
            return await self._auth.authenticate(header, lambda: self.source_of(connection))
        except (Unauthorized, RateLimited) as refused:
            if refused.message == BAD_CREDENTIALS:
                self._failed_logins.record(header, self.source_of(connection))
                if self.on_failed_login is not None:
                    self.on_failed_login()
            # The tarpit: a flooding source's connections sit idle meanwhile.
            # The wait a 429 tells shrinks by what was already waited.
            held = await self._tarpit.hold(self.source_of(connection))
            if isinstance(refused, RateLimited):
                held_ms = math.floor(held * 1000)
                refused.retry_after_ms = max(1, refused.retry_after_ms - held_ms)
            raise

    def connection_authenticated(self, connection: Any, header: str, user: str) -> None:
        """THE place where a connection is recorded as authenticated (as
        ``user``, with this very header): later requests on it that carry the
        same header skip the credential cache, and ``on_authenticated``, if
        set, hears of it (for per-connection limits kept elsewhere)."""
        # The hook first: if it refuses (too many connections for this
        # user), nothing is remembered and the next request asks again.
        if self.on_authenticated is not None:
            self.on_authenticated(connection, user)
        expires = time.monotonic() + CONNECTION_AUTH_TTL
        connection.ctx.auth = (_header_bytes(header), user, expires)

    def source_of(self, connection: Any) -> Hashable:
        """Who is asking, for login fairness and back-off: ``("uid", N)``;
        if the kernel cannot find the client's socket, the one shared
        UNIDENTIFIED source; if this host allows no sock_diag at all, this
        connection. Looked up once per connection, and only when needed."""
        if connection is None:
            return UNIDENTIFIED
        source: Hashable | None = getattr(connection.ctx, "source", None)
        if source is None:
            uid = self._peers.uid(connection.peername, connection.sockname)
            if uid is not None:
                source = ("uid", uid)
            elif self._peers.available:
                source = UNIDENTIFIED
            else:
                source = ("connection", next(self._connections))
            connection.ctx.source = source
        return source


def reply_headers(request: Request) -> dict[str, str]:
    """Headers for any reply to an admitted request: the rate limit's
    interval and the wait before the user's next request."""
    limiter: RateLimiter | None = getattr(request.ctx, "limiter", None)
    return {} if limiter is None else limiter.headers(request.ctx.user)


def _header_bytes(header: str) -> bytes:
    return header.encode("utf-8", "surrogateescape")


def _known_on_connection(connection: Any, header: str | None) -> str | None:
    """The user whose credentials this keep-alive connection already sent
    and had verified, if this request carries the very same header."""
    memo = getattr(connection.ctx, "auth", None) if connection is not None else None
    if memo is None or header is None or memo[2] < time.monotonic():
        return None
    sent, user, _ = memo
    return user if hmac.compare_digest(sent, _header_bytes(header)) else None
