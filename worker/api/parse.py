"""Turning what a client sent into checked values, or a clear 400."""

from __future__ import annotations

import json
import re
from typing import Any

from worker.config import MAX_ARG_BYTES, MAX_ARGS
from worker.errors import BadRequest, JobNotFound

_JOB_ID = re.compile(r"[0-9]{1,18}")
_SHOWN = 40  # how much of a bad value an error message quotes


def job_id(raw: str) -> int:
    if _JOB_ID.fullmatch(raw):
        return int(raw)
    if raw.isascii() and raw.isdigit():
        raise JobNotFound(f"job {raw[:_SHOWN]}{'...' if len(raw) > _SHOWN else ''} not found")
    raise BadRequest(f"job ID must be a positive integer, not {_quote(raw)}")


def run_body(body: bytes) -> tuple[str, tuple[str, ...]]:
    """``(command, args)`` from a ``POST /jobs/run`` body."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest("request body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(data) - {"command", "args"})
    if unknown:
        raise BadRequest(f"unknown field {_quote(unknown[0])}; expected command and args")
    command = data.get("command")
    if not isinstance(command, str) or not command:
        raise BadRequest("'command' must be a non-empty string")
    args = data.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BadRequest("'args' must be a list of strings")
    if len(args) > MAX_ARGS:
        raise BadRequest(f"too many args: {len(args)} (at most {MAX_ARGS})")
    for value in (command, *args):
        if "\0" in value:
            raise BadRequest("command and args must not contain NUL characters")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            # JSON can carry lone surrogates ("\ud800") that no OS string can hold.
            raise BadRequest("command and args must be valid Unicode text") from exc
        if size > MAX_ARG_BYTES:
            raise BadRequest(f"an argument is longer than {MAX_ARG_BYTES} bytes")
    return command, tuple(args)


def _quote(value: str) -> str:
    shown = value[:_SHOWN] + ("..." if len(value) > _SHOWN else "")
    return json.dumps(shown)
