"""The HTTPS API: routes, authentication and the JSON error contract."""

from __future__ import annotations

import hmac
import logging
import math
import time
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge, SanicException
from sanic.response import HTTPResponse, json

from worker.api.auth import REALM, Authenticator
from worker.api.executor_client import ExecutorClient
from worker.api.follow import Feeds
from worker.api.origin import require_local
from worker.api.ratelimit import RateLimiter
from worker.api.routes import JobRoutes
from worker.config import ApiConfig
from worker.errors import RateLimited, Unauthorized, WorkerError

log = logging.getLogger("worker.api")

# How long a keep-alive connection may reuse its verified credentials
# without asking the credential cache again.
CONNECTION_AUTH_TTL = 60.0


def create_app(config: ApiConfig, auth: Authenticator, executor: ExecutorClient) -> Sanic[Any, Any]:
    # env_prefix=None: no SANIC_* variable from the environment can change
    # this app (proxy trust among them).
    app: Sanic[Any, Any] = Sanic("worker", configure_logging=False, env_prefix=None)
    app.config.REQUEST_MAX_SIZE = config.max_body
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = 30
    # A kill answers once the tree is gone, which may take the whole grace.
    app.config.RESPONSE_TIMEOUT = config.response_timeout
    # Proxy headers are never trusted: the peer is who it is.
    app.config.PROXIES_COUNT = 0
    app.config.REAL_IP_HEADER = None
    app.config.FORWARDED_SECRET = None

    limiter = RateLimiter(config.rate_limit_ms)

    @app.on_request
    async def admit(request: Request) -> None:
        # Sanic also runs this for requests it refused while parsing them
        # (a header too large, say): those have no connection info and no
        # route, and the error handler answers them.
        connection = request.conn_info
        if connection is not None and not getattr(connection.ctx, "local", False):
            # Cheapest refusal first: a remote peer learns nothing about users.
            # A connection's peer never changes, so it is checked once.
            require_local(connection.client_ip)
            connection.ctx.local = True
        if request.route is None:
            return
        header = request.headers.get("authorization")
        user = _known_on_connection(connection, header)
        if user is None:
            user = await auth.authenticate(header)
            if connection is not None and header is not None:
                expires = time.monotonic() + CONNECTION_AUTH_TTL
                connection.ctx.auth = (_header_bytes(header), user, expires)
        limiter.admit(user)
        request.ctx.user = user

    JobRoutes(executor, Feeds(executor, config.max_output)).register(app)

    @app.exception(Exception)
    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        return error_response(request, exc, config)

    return app


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


def error_response(request: Request, exc: Exception, config: ApiConfig) -> HTTPResponse:
    headers: dict[str, str] = {}
    body: dict[str, Any] = {}
    if isinstance(exc, WorkerError):
        status, message = exc.http_status, exc.message
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = REALM
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_ms / 1000)))
            body["retry_after_ms"] = exc.retry_after_ms
    elif isinstance(exc, NotFound):
        status, message = 404, f"no such endpoint: {request.method} {request.path}"
    elif isinstance(exc, MethodNotAllowed):
        status, message = 405, f"method {request.method} is not allowed on {request.path}"
        allowed = getattr(exc, "allowed_methods", None)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    elif isinstance(exc, PayloadTooLarge) and "header" in str(exc).lower():
        status, message = 431, "request headers are too large"
    elif isinstance(exc, PayloadTooLarge):
        status, message = 413, f"request body is larger than {config.max_body} bytes"
    elif isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        status, message = exc.status_code, str(exc) or "bad request"
    elif isinstance(exc, SanicException) and exc.status_code == 503:
        status, message = 503, str(exc) or "the server is busy; retry shortly"
    else:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        status, message = 500, "internal server error"
    if status >= 500 and isinstance(exc, WorkerError):
        log.error("%s %s: %s", request.method, request.path, message)
    return json({"error": message, **body}, status=status, headers=headers)
