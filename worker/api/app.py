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
from worker.api.frontdoor import mark_authenticated
from worker.api.gate import Gate, check_local, reply_headers
from worker.api.metrics import ApiMetrics
from worker.api.openapi import register as register_openapi
from worker.api.ratelimit import RateLimiter
from worker.api.routes import JobRoutes
from worker.config import ApiConfig
from worker.errors import Unauthorized, WorkerError

log = logging.getLogger("worker.api")


def create_app(config: ApiConfig, auth: Authenticator, executor: ExecutorClient) -> Sanic[Any, Any]:
    # env_prefix=None: no SANIC_* variable from the environment can change
    # this app (proxy trust among them).
    app: Sanic[Any, Any] = Sanic("worker", configure_logging=False, env_prefix=None)
    app.config.REQUEST_MAX_SIZE = config.max_body
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = config.keep_alive_timeout
    # A kill answers once the tree is gone, which may take the whole grace.
    app.config.RESPONSE_TIMEOUT = config.response_timeout
    # Proxy headers are never trusted: the peer is who it is.
    app.config.PROXIES_COUNT = 0
    app.config.REAL_IP_HEADER = None
    app.config.FORWARDED_SECRET = None

    gate = Gate(auth, RateLimiter(config.rate_limit_ms))
    # A logged-in user's connection is among the last the front door sheds.
    gate.on_authenticated = mark_authenticated
    kill_timeout = config.response_timeout - 10  # answered before Sanic's own timeout
    feeds = Feeds(executor, config.max_output)
    JobRoutes(executor, feeds, kill_timeout, config.kill_grace).register(app, gate)
    metrics = ApiMetrics(executor)
    metrics.hook(gate, executor)
    metrics.register(app, gate)
    register_openapi(app)

    @app.exception(Exception)
    async def on_error(request: Request, exc: Exception) -> HTTPResponse:
        metrics.answered(request, exc)
        return error_response(request, exc, config)

    return app


def error_response(request: Request, exc: Exception, config: ApiConfig) -> HTTPResponse:
    """Every failure as ``{"error": "..."}`` with its status; never a traceback."""
    if not isinstance(exc, WorkerError):
        # Refused before any handler (no such route, a body too large...):
        # still, a remote peer gets only the local-only answer.
        try:
            check_local(request)
        except WorkerError as refused:
            exc = refused
    headers = reply_headers(request)  # an admitted request's rate-limit spacing
    body: dict[str, Any] = {}
    if isinstance(exc, WorkerError):
        status, message = exc.http_status, exc.message
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = REALM
        retry_after_ms = getattr(exc, "retry_after_ms", None)
        if isinstance(retry_after_ms, int):  # 429, and 503s that say "try again"
            headers["Retry-After"] = str(max(1, math.ceil(retry_after_ms / 1000)))
            body["retry_after_ms"] = retry_after_ms
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, message)
    else:
        status, message = _sanic_error(request, exc, config, headers)
    return json({"error": message, **body}, status=status, headers=headers)


def _sanic_error(
    request: Request, exc: Exception, config: ApiConfig, headers: dict[str, str]
) -> tuple[int, str]:
    """Sanic's own refusals, in our words; anything else is a bug: 500."""
    if isinstance(exc, NotFound):
        return 404, f"no such endpoint: {request.method} {request.path}"
    if isinstance(exc, MethodNotAllowed):
        allowed = getattr(exc, "allowed_methods", None)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
        return 405, f"method {request.method} is not allowed on {request.path}"
    if isinstance(exc, PayloadTooLarge):
        if "header" in str(exc).lower():
            return 431, "request headers are too large"
        return 413, f"request body is larger than {config.max_body} bytes"
    if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        return exc.status_code, str(exc) or "bad request"
    if isinstance(exc, SanicException) and exc.status_code == 503:
        return 503, str(exc) or "the server is busy; retry shortly"
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return 500, "internal server error"
