"""``GET /openapi.json``: the API described as an OpenAPI 3.1 document.

A plain dict built once at import, served as JSON. tests/api/test_openapi.py
keeps it honest: every route the app registers is here with its methods, and
nothing here is missing from the app. The document needs no credentials (it
describes the API and holds no one's data, and tools fetch it without any),
but like every route it is answered only to local peers.
"""

from __future__ import annotations

import json
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

import worker
from worker.api import parse
from worker.api.gate import check_local
from worker.api.openapi_schemas import HEADERS, PARAMETERS, SCHEMAS, Schema, ref
from worker.protocol import JobStatus

PATH = "/openapi.json"

_STATUS_TEXT = {
    400: "Bad input: a parameter, the body or a header is not what the server takes.",
    401: "No credentials, or wrong ones (WWW-Authenticate says how).",
    403: "Not a local request: only loopback peers are answered.",
    404: "No such job (a job of another user is answered alike).",
    409: "The job is not in a state for this, or the Idempotency-Key was used for another request.",
    413: "The request body is too large (--max-body).",
    429: "Too soon after this user's last request (retry_after_ms, Retry-After), or a quota.",
    503: "The executor is gone, or did not answer within --executor-timeout "
    "(then with Retry-After: try again).",
}
_AUTHENTICATED = (401, 403, 429, 503)
_JSON = "application/json"
_OCTETS = "application/octet-stream"


def _error(status: int) -> Schema:
    headers: dict[str, Schema] = {}
    if status in (429, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    if status == 401:
        headers["WWW-Authenticate"] = {
            "schema": {"type": "string"},
            "required": True,
            "description": "Basic realm=...",
        }
    reply: Schema = {
        "description": _STATUS_TEXT[status],
        "content": {_JSON: {"schema": ref("Error")}},
    }
    if headers:
        reply["headers"] = headers
    return reply


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(status): _error(status) for status in sorted(set(statuses))}


_RATE_HEADERS = {
    "X-Rate-Limit-Interval-Ms": {"$ref": "#/components/headers/RateLimitInterval"},
    "X-Rate-Limit-Wait-Ms": {"$ref": "#/components/headers/RateLimitWait"},
}


def _ok(description: str, schema: str, **headers: Schema) -> Schema:
    return {
        "description": description,
        "headers": {**_RATE_HEADERS, **headers},
        "content": {_JSON: {"schema": ref(schema)}},
    }


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_RAW_OUTPUT = {
    "schema": {
        "type": "string",
        "description": "The output bytes as written. With follow: chunked, live, until the job "
        "has ended and every byte was sent.",
    }
}
_X_JOB = {"X-Job": {"$ref": "#/components/headers/XJob"}}


def _run() -> Schema:
    replay = {
        "Idempotent-Replayed": {
            "schema": {"type": "string", "const": "true"},
            "description": "This reply repeats the one the first request with this key got.",
        }
    }
    job_id = {
        "X-Job-Id": {
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "With ?follow=true: the new job's ID.",
        },
        **_X_JOB,
    }
    headers = {**_RATE_HEADERS, **job_id}
    started = {
        "description": "Started. With ?follow=true, the job's output, live, as for "
        "GET /jobs/{id}/out?follow=true.",
        "headers": headers,
        "content": {_JSON: {"schema": ref("JobCreated")}, _OCTETS: _RAW_OUTPUT},
    }
    return {
        "post": {
            "operationId": "run",
            "summary": "Start a job",
            "parameters": [
                _param("Follow"),
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "A retry with the same key (same user, same body) starts "
                    "nothing and gets the first reply again, as 200.",
                    "schema": {
                        "type": "string",
                        "pattern": f"^[\\x21-\\x7e]{{1,{parse.MAX_IDEMPOTENCY_KEY}}}$",
                    },
                },
            ],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": ref("RunRequest")}},
            },
            "responses": {
                "201": started,
                "200": {**started, "headers": {**headers, **replay}},
                **_errors(400, 409, 413, *_AUTHENTICATED),
            },
        }
    }


def _jobs() -> Schema:
    return {
        "get": {
            "operationId": "list",
            "summary": "A page of the caller's jobs, newest first",
            "parameters": [
                _query(
                    "status",
                    {"type": "string", "enum": [s.value for s in JobStatus]},
                    "Only jobs in this status.",
                ),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": parse.MAX_LIST_LIMIT},
                    f"At most this many jobs (default {parse.DEFAULT_LIST_LIMIT}).",
                ),
                _query(
                    "cursor",
                    {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "The next_cursor of the page before.",
                ),
            ],
            "responses": {
                "200": _ok("A page of jobs.", "JobList"),
                **_errors(400, *_AUTHENTICATED),
            },
        },
        "delete": {
            "operationId": "prune",
            "summary": "Forget every finished job of the caller",
            "parameters": [
                {
                    **_query("finished", {"type": "boolean"}, "Must be true."),
                    "required": True,
                }
            ],
            "responses": {
                "200": _ok("The IDs forgotten.", "Deleted"),
                **_errors(400, *_AUTHENTICATED),
            },
        },
    }


def _job(method: str, operation: Schema) -> Schema:
    return {"parameters": [_param("JobRef")], method: operation}


def _status() -> Schema:
    return _job(
        "get",
        {
            "operationId": "status",
            "summary": "A job's status",
            "parameters": [_param("Wait")],
            "responses": {"200": _ok("The job.", "Job"), **_errors(400, 404, *_AUTHENTICATED)},
        },
    )


def _out() -> Schema:
    return _job(
        "get",
        {
            "operationId": "out",
            "summary": "A job's output: a JSON page, the raw bytes, or followed live",
            "parameters": [
                _query(
                    "format",
                    {"type": "string", "enum": ["json", "raw"]},
                    "json (default; a page) or raw (the bytes; the only one with follow).",
                ),
                _param("Follow"),
                _param("Offset"),
                _param("Tail"),
                _param("OutputLimit"),
            ],
            "responses": {
                "200": {
                    "description": "A page as JSON; or, raw, the bytes with the job's status in "
                    "X-Job (a follow ends with it in an X-Job trailer, for TE: trailers).",
                    "headers": {**_RATE_HEADERS, **_X_JOB},
                    "content": {_JSON: {"schema": ref("OutputPage")}, _OCTETS: _RAW_OUTPUT},
                },
                **_errors(400, 404, *_AUTHENTICATED),
            },
        },
    )


def _param_flag(name: str, description: str) -> Schema:
    return _query(name, {"type": "boolean"}, description)


def _query_header(name: str, description: str) -> Schema:
    return {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}


def _kill() -> Schema:
    return _job(
        "put",
        {
            "operationId": "kill",
            "summary": "Kill a job (TERM, grace, KILL), or send it one signal",
            "parameters": [
                _param_flag("force", "SIGKILL at once"),
                _query("signal", {"type": "string"}, "Send only this signal (HUP, SIGHUP, 1)."),
                _query_header(
                    "Prefer",
                    "progress: a kill that takes over 0.25 s first gets a 102 Processing "
                    "interim reply with X-Kill-Signal and X-Kill-After.",
                ),
            ],
            "responses": {
                "200": _ok("Killed, or the signal sent.", "Killed"),
                **_errors(400, 404, 409, *_AUTHENTICATED),
            },
        },
    )


def _stdin() -> Schema:
    return _job(
        "post",
        {
            "operationId": "stdin",
            "summary": "Write to a job's standard input",
            "parameters": [_param_flag("eof", "Close stdin once these bytes are in")],
            "requestBody": {"content": {_OCTETS: {"schema": {"type": "string"}}}},
            "responses": {
                "200": _ok("Queued for the job's stdin.", "StdinWritten"),
                **_errors(400, 404, 409, 413, *_AUTHENTICATED),
            },
        },
    )


def _delete() -> Schema:
    return _job(
        "delete",
        {
            "operationId": "delete",
            "summary": "Forget a finished job and its output",
            "responses": {
                "200": _ok("Forgotten.", "Deleted"),
                **_errors(400, 404, 409, *_AUTHENTICATED),
            },
        },
    )


def _unauthenticated(operation_id: str, summary: str, reply: Schema, *errors: int) -> Schema:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "security": [],
            "responses": {"200": reply, **_errors(403, *errors)},
        }
    }


def _metrics() -> Schema:
    return {
        "get": {
            "operationId": "metrics",
            "summary": "Metrics in the Prometheus text exposition format",
            "responses": {
                "200": {
                    "description": "The metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(*_AUTHENTICATED),
            },
        }
    }


def build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "worker",
            "version": worker.__version__,
            "description": 'Run Linux commands as jobs. Every error is {"error": "..."}. '
            "Every reply to an authenticated request carries X-Rate-Limit-Interval-Ms and "
            "X-Rate-Limit-Wait-Ms.",
        },
        "servers": [{"url": "https://127.0.0.1:8443"}],
        "security": [{"basic": []}],
        "paths": {
            "/jobs/run": _run(),
            "/jobs": _jobs(),
            "/jobs/{id}/status": _status(),
            "/jobs/{id}/out": _out(),
            "/jobs/{id}/kill": _kill(),
            "/jobs/{id}/stdin": _stdin(),
            "/jobs/{id}": _delete(),
            "/health": _unauthenticated(
                "health",
                "Whether the executor answers (no credentials: for health checks)",
                {"description": "It does.", "content": {_JSON: {"schema": ref("Health")}}},
                503,
            ),
            PATH: _unauthenticated(
                "openapi",
                "This document (no credentials)",
                {
                    "description": "The document.",
                    "content": {_JSON: {"schema": {"type": "object"}}},
                },
            ),
            "/metrics": _metrics(),
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "headers": HEADERS,
        },
    }


DOCUMENT = build()
_BODY = json.dumps(DOCUMENT).encode()


async def serve(request: Request) -> HTTPResponse:
    check_local(request)
    return raw(_BODY, content_type=_JSON)


def register(app: Sanic[Any, Any]) -> None:
    app.add_route(serve, PATH, methods=["GET"], name="openapi")
