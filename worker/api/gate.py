"""Who may make a request: local peers, authenticated users, within the rate.

Applied to each route handler (Sanic's middleware machinery costs every
request more than these checks do). Requests that match no route are
answered by the error handler, which makes the same local-only check first.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sanic import Request

from worker.api.auth import Authenticator
from worker.api.origin import require_local
from worker.api.ratelimit import RateLimiter

# How long a keep-alive connection may reuse its verified credentials
# without asking the credential cache again.
CONNECTION_AUTH_TTL = 60.0

Handler = Callable[..., Coroutine[Any, Any, Any]]


def check_local(request: Request) -> None:
    """403 for a non-loopback peer; a connection's peer never changes, so
    each connection is checked once."""
    connection = request.conn_info
    if connection is not None and not getattr(connection.ctx, "local", False):
        require_local(connection.client_ip)
        connection.ctx.local = True


class Gate:
    def __init__(self, auth: Authenticator, limiter: RateLimiter) -> None:
        self._auth = auth
        self._limiter = limiter

    def guard(self, handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
            await self.admit(request)
            return await handler(request, *args, **kwargs)

        return guarded

    async def admit(self, request: Request) -> None:
        # Cheapest refusal first: a remote peer learns nothing about users.
        check_local(request)
        connection = request.conn_info
        header = request.headers.get("authorization")
        user = _known_on_connection(connection, header)
        if user is None:
            user = await self._auth.authenticate(header)
            if connection is not None and header is not None:
                expires = time.monotonic() + CONNECTION_AUTH_TTL
                connection.ctx.auth = (_header_bytes(header), user, expires)
        self._limiter.admit(user)
        request.ctx.user = user


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
