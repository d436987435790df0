"""The reusable parts of the OpenAPI document: bodies, parameters, headers.

Bounds come from the modules that enforce them (parse.py, config.py), so the
document says what the server checks, and changes with it.
"""

from __future__ import annotations

from typing import Any

from worker.api import parse
from worker.config import JOB_NAME_PATTERN, MAX_ARG_BYTES, MAX_ARGS, NETWORKS
from worker.protocol import JobStatus

Schema = dict[str, Any]

# parse.py takes offsets, line counts and IDs of at most 18 digits.
_MAX_NUMBER = 10**18 - 1
_REF = "#/components/schemas/"


def every_field(schema: Schema) -> Schema:
    """``schema`` with each of its properties required: a reply that always has them all."""
    return {**schema, "required": list(schema["properties"])}


def ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


_TIME = nullable({"type": "string", "format": "date-time"})
_SIZE = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 1 << 62},
        {"type": "string", "description": 'A size such as "512M", "2G" or "1048576".'},
    ]
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every 4xx and 5xx reply.",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "One sentence that says what went wrong."},
            "retry_after_ms": {
                "type": "integer",
                "minimum": 1,
                "description": "With a 429 (and a 503 that says try again): when to retry.",
            },
        },
        "additionalProperties": False,
    },
    "RunRequest": {
        "type": "object",
        "required": ["command"],
        "properties": {
            "command": {"type": "string", "minLength": 1, "maxLength": MAX_ARG_BYTES},
            "args": {
                "type": "array",
                "items": {"type": "string", "maxLength": MAX_ARG_BYTES},
                "maxItems": MAX_ARGS,
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": parse.MAX_TIMEOUT,
                "description": "Seconds; the job is killed (reason timeout) past it.",
            },
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "propertyNames": {"pattern": "^[^=]+$"},
                "maxProperties": parse.MAX_ENV,
                "description": "Added to the server's environment.",
            },
            "cwd": {"type": "string", "minLength": 1},
            "network": {"type": "string", "enum": list(NETWORKS)},
            "limits": ref("Limits"),
            "name": {"type": "string", "pattern": f"^{JOB_NAME_PATTERN}$"},
        },
        "additionalProperties": False,
    },
    "Limits": {
        "type": "object",
        "properties": {
            "memory": _SIZE,
            "cpus": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1_000_000},
            "pids": {"type": "integer", "minimum": 1, "maximum": 1 << 62},
            "io_read_bps": _SIZE,
            "io_write_bps": _SIZE,
            "io_weight": {"type": "integer", "minimum": 1, "maximum": 10_000},
        },
        "additionalProperties": False,
    },
    "JobCreated": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer", "minimum": 1}},
        "additionalProperties": False,
    },
    "Job": every_field(
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "exit_code": nullable({"type": "integer"}),
                "signal": nullable({"type": "integer", "description": "The signal that ended it."}),
                "reason": nullable(
                    {
                        "type": "string",
                        "description": "kill, signal, timeout or shutdown when killed.",
                    }
                ),
                "pid": nullable({"type": "integer"}),
                "command": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}},
                "started_at": _TIME,
                "ended_at": _TIME,
                "isolation": nullable(ref("Isolation")),
                "limits": nullable(ref("AppliedLimits")),
                "unapplied_limits": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Limits that could not be applied, each with why.",
                },
                "usage": nullable(ref("Usage")),
                "name": nullable({"type": "string"}),
                "error": nullable({"type": "string", "description": "Why it could not start."}),
            },
        }
    ),
    "Isolation": {
        "type": "object",
        "properties": {
            "uid": nullable({"type": "integer"}),
            "gid": nullable({"type": "integer"}),
            "pid_namespace": {"type": "boolean"},
            "mount_namespace": {"type": "boolean"},
            "network": {"type": "string", "enum": list(NETWORKS)},
            "cgroup": {"type": "boolean"},
        },
    },
    "AppliedLimits": {
        "type": "object",
        "properties": {
            "memory": {"type": "integer"},
            "cpus": {"type": "number"},
            "pids": {"type": "integer"},
            "io_read_bps": {"type": "integer"},
            "io_write_bps": {"type": "integer"},
            "io_weight": {"type": "integer"},
        },
    },
    "Usage": {
        "type": "object",
        "properties": {
            "cpu_seconds": nullable({"type": "number"}),
            "memory_peak": nullable({"type": "integer"}),
            "pids_peak": nullable({"type": "integer"}),
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": ref("Job")},
            "next_cursor": nullable(
                {"type": "string", "description": "The next page's cursor; null on the last."}
            ),
        },
        "additionalProperties": False,
    },
    "OutputPage": every_field(
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Where this page starts.",
                },
                "output": {"type": "string", "description": "UTF-8; invalid bytes become U+FFFD."},
                "next_offset": {"type": "integer", "minimum": 0},
                "size": {"type": "integer", "minimum": 0, "description": "Bytes written so far."},
                "truncated_bytes": {"type": "integer", "minimum": 0},
                "evicted": {"type": "boolean"},
                "complete": {
                    "type": "boolean",
                    "description": "The job has ended and every byte was read.",
                },
            },
            "additionalProperties": False,
        }
    ),
    "Killed": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "sent": {"type": "string", "description": "With ?signal=: the signal sent."},
        },
        "additionalProperties": False,
    },
    "StdinWritten": {
        "type": "object",
        "required": ["id", "accepted", "closed"],
        "properties": {
            "id": {"type": "integer"},
            "accepted": {"type": "integer", "minimum": 0},
            "closed": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "Deleted": {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "array", "items": {"type": "integer"}}},
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "const": "ok"}},
        "additionalProperties": False,
    },
}


def _flag(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "schema": {"type": "boolean"},
        "description": f"{description} (true/false, also 1/0 and yes/no).",
    }


def _number(name: str, description: str, least: int = 0, most: int = _MAX_NUMBER) -> Schema:
    return {
        "name": name,
        "in": "query",
        "schema": {"type": "integer", "minimum": least, "maximum": most},
        "description": description,
    }


PARAMETERS: dict[str, Schema] = {
    "JobRef": {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "A job's ID, or a name: the caller's newest job of that name.",
        "schema": {"type": "string", "pattern": f"^([0-9]{{1,18}}|{JOB_NAME_PATTERN})$"},
    },
    "Follow": _flag("follow", "Stream the output live, raw, until the job has ended"),
    "Offset": _number("offset", "The first byte of output to send."),
    "Tail": _number("tail", "Start from the last N lines (not with offset)."),
    "OutputLimit": _number(
        "limit", "At most this many bytes in the page.", 1, parse.MAX_OUTPUT_LIMIT
    ),
    "Wait": _flag("wait", "Answer once the job has ended"),
}

_INTEGER_HEADER = {"schema": {"type": "integer", "minimum": 0}}
HEADERS: dict[str, Schema] = {
    # Sent on every reply to an admitted request while --rate-limit-ms is
    # above 0 (with 0 there is no limit to tell of).
    "RateLimitInterval": {
        **_INTEGER_HEADER,
        "description": "The server's --rate-limit-ms: the spacing between one user's requests.",
    },
    "RateLimitWait": {
        **_INTEGER_HEADER,
        "description": "Milliseconds from now until this user's next request is admitted.",
    },
    "RetryAfter": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds until a retry may succeed.",
    },
    "XJob": {
        "schema": {"type": "string"},
        "description": "The job's status (as GET /jobs/{id}/status gives it), compact JSON. "
        "A follow sends the final status again in an X-Job trailer to a client "
        "that sends TE: trailers.",
    },
}
