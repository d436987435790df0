"""The HTTPS API: routes, authentication and the JSON error contract."""

from __future__ import annotations

import logging
import math
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
        if request.conn_info is not None:
            # Cheapest refusal first: a remote peer learns nothing about users.
            require_local(request.conn_info.client_ip)
        if request.route is None:
            return
        user = await auth.authenticate(request.headers.get("authorization"))
        limiter.admit(user)
        request.ctx.user = user

    JobRoutes(executor, Feeds(executor, config.max_output)).register(app)

    @app.exception(Exception)
    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        return error_response(request, exc, config)

    return app


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
