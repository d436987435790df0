"""Turning what a client sent into checked values, or a clear 400."""

from __future__ import annotations

import json
import re
import signal
from dataclasses import dataclass
from typing import Any

from worker.config import JOB_NAME_PATTERN, JOB_NAME_RULE, MAX_ARG_BYTES, MAX_ARGS, NETWORKS
from worker.errors import BadRequest, JobNotFound
from worker.protocol import JobStatus, Limits
from worker.units import parse_size

_JOB_ID = re.compile(r"[0-9]{1,18}")
_SHOWN = 40  # how much of a bad value an error message quotes


def job_id(raw: str) -> int:
    if _JOB_ID.fullmatch(raw):
        return int(raw)
    if raw.isascii() and raw.isdigit():
        raise JobNotFound(f"job {raw[:_SHOWN]}{'...' if len(raw) > _SHOWN else ''} not found")
    raise BadRequest(f"job ID must be a positive integer, not {_quote(raw)}")


JOB_NAME = re.compile(JOB_NAME_PATTERN)
NAME_RULE = JOB_NAME_RULE


def job_ref(raw: str) -> int | str:
    """A job as a path names it: its ID, or a name (the caller's newest job
    of that name)."""
    if raw.isascii() and raw.isdigit():
        return job_id(raw)
    if JOB_NAME.fullmatch(raw):
        return raw
    raise BadRequest(f"a job is named by its ID or by a name ({NAME_RULE}), not {_quote(raw)}")


def signal_number(raw: str) -> int:
    """A signal by name (HUP, SIGHUP, hup) or number."""
    name = raw.upper()
    number = int(name) if name.isascii() and name.isdigit() else None
    for candidate in signal.Signals:
        if candidate.value == number or candidate.name in (name, f"SIG{name}"):
            return int(candidate.value)
    raise BadRequest(f"'signal' must be a signal such as HUP, INT, USR1 or 15, not {_quote(raw)}")


def tail(raw: str | None) -> int | None:
    """How many of the last lines to start from (None: from the start)."""
    if raw is None:
        return None
    if not _JOB_ID.fullmatch(raw):
        raise BadRequest(f"'tail' must be a number of lines (0 or more), not {_quote(raw)}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class RunOptions:
    command: str
    args: tuple[str, ...]
    timeout: float | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    network: str | None = None
    limits: Limits | None = None
    name: str | None = None


def run_body(body: bytes) -> RunOptions:
    """What a ``POST /jobs/run`` body asks for."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest("request body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(data) - RUN_FIELDS)
    if unknown:
        expected = ", ".join(sorted(RUN_FIELDS))
        raise BadRequest(f"unknown field {_quote(unknown[0])}; expected {expected}")
    command = data.get("command")
    if not isinstance(command, str) or not command:
        raise BadRequest("'command' must be a non-empty string")
    args = data.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BadRequest("'args' must be a list of strings")
    if len(args) > MAX_ARGS:
        raise BadRequest(f"too many args: {len(args)} (at most {MAX_ARGS})")
    for value in (command, *args):
        _check_text(value, "command and args")
    return RunOptions(
        command=command,
        args=tuple(args),
        timeout=_timeout(data.get("timeout")),
        env=_env(data.get("env")),
        cwd=_cwd(data.get("cwd")),
        network=_network(data.get("network")),
        limits=_limits(data.get("limits")),
        name=_name(data.get("name")),
    )


RUN_FIELDS = frozenset({"command", "args", "timeout", "env", "cwd", "network", "limits", "name"})
# Limits given as sizes ("512M") or whole numbers of bytes.
_SIZES = frozenset({"memory", "io_read_bps", "io_write_bps"})
_LIMIT_FIELDS = ("memory", "cpus", "pids", "io_read_bps", "io_write_bps", "io_weight")
MAX_TIMEOUT = 10 * 365 * 24 * 3600.0
MAX_ENV = 1024


def _check_text(value: str, what: str) -> None:
    if "\0" in value:
        raise BadRequest(f"{what} must not contain NUL characters")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        # JSON can carry lone surrogates ("\ud800") that no OS string can hold.
        raise BadRequest(f"{what} must be valid Unicode text") from exc
    if size > MAX_ARG_BYTES:
        raise BadRequest(f"a value in {what} is longer than {MAX_ARG_BYTES} bytes")


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest("'timeout' must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT:
        raise BadRequest(f"'timeout' must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds")
    return float(value)


def _env(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest("'env' must be an object of strings")
    if len(value) > MAX_ENV:
        raise BadRequest(f"too many env variables: {len(value)} (at most {MAX_ENV})")
    for key, item in value.items():
        if not key or "=" in key:
            raise BadRequest(f"bad env variable name {_quote(key)}")
        _check_text(key, "env names")
        _check_text(item, "env values")
    return tuple(value.items())


def _cwd(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest("'cwd' must be a non-empty string")
    _check_text(value, "'cwd'")
    return value


def _limits(value: Any) -> Limits | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'limits' must be an object")
    unknown = sorted(set(value) - set(_LIMIT_FIELDS))
    if unknown:
        raise BadRequest(f"unknown limit {_quote(unknown[0])}; expected {', '.join(_LIMIT_FIELDS)}")
    found: dict[str, Any] = {}
    for name, item in value.items():
        found[name] = _limit(name, item)
    return Limits(**found)


def _limit(name: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise BadRequest(f"'limits.{name}' must be a number")
    if name in _SIZES and isinstance(value, str):
        try:
            value = parse_size(value)
        except ValueError as exc:
            raise BadRequest(f"'limits.{name}': {exc}") from None
    if name == "cpus":
        ok = isinstance(value, (int, float)) and 0 < value < 1_000_000
        if not ok:
            raise BadRequest("'limits.cpus' must be a number of cores above 0, such as 0.5")
        return float(value)
    top = 10_000 if name == "io_weight" else 1 << 62
    if not isinstance(value, int) or not 1 <= value <= top:
        raise BadRequest(f"'limits.{name}' must be a whole number from 1 to {top}")
    return value


def _network(value: Any) -> str | None:
    if value is None:
        return None
    if value not in NETWORKS:
        raise BadRequest(f"'network' must be one of {', '.join(NETWORKS)}")
    return str(value)


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not JOB_NAME.fullmatch(value):
        raise BadRequest(f"'name' must be {NAME_RULE}")
    return value


def flag(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"'{name}' must be true or false, not {_quote(raw)}")


def offset(raw: str | None) -> int:
    if raw is None:
        return 0
    if not _JOB_ID.fullmatch(raw):
        raise BadRequest(f"'offset' must be a byte offset (0 or more), not {_quote(raw)}")
    return int(raw)


# Pages: how much one reply carries by default, and at most.
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
DEFAULT_OUTPUT_LIMIT = 1 << 20
MAX_OUTPUT_LIMIT = 8 << 20
MAX_IDEMPOTENCY_KEY = 255
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")


def limit(raw: str | None, default: int, most: int) -> int:
    if raw is None:
        return default
    if not _JOB_ID.fullmatch(raw) or not 0 < int(raw) <= most:
        raise BadRequest(f"'limit' must be a whole number from 1 to {most}, not {_quote(raw)}")
    return int(raw)


def cursor(raw: str | None) -> int | None:
    """Where a page of the job list starts: the ``next_cursor`` of the one before."""
    if raw is None:
        return None
    if not _JOB_ID.fullmatch(raw):
        raise BadRequest(f"'cursor' must be a next_cursor from an earlier page, not {_quote(raw)}")
    return int(raw)


def idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return raw


def status_filter(raw: str | None) -> JobStatus | None:
    if raw is None:
        return None
    try:
        return JobStatus(raw)
    except ValueError:
        choices = ", ".join(s.value for s in JobStatus)
        raise BadRequest(f"'status' must be one of {choices}, not {_quote(raw)}") from None


def _quote(value: str) -> str:
    shown = value[:_SHOWN] + ("..." if len(value) > _SHOWN else "")
    return json.dumps(shown)
