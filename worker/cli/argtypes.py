"""Argument types for the command line: each turns text into a checked value."""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    import argparse


def _bad(message: str) -> argparse.ArgumentTypeError:
    # Only argparse calls these, so it is loaded by then; a plain line
    # (parser.py) never imports it.
    import argparse

    return argparse.ArgumentTypeError(message)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise _bad(f"must be a non-negative number of seconds: {text!r}")
    return value


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise _bad(f"not a TCP port: {text!r}")
    return int(text)


def byte_count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise _bad(f"not a positive number of bytes: {text!r}")
    return int(text)


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise _bad(f"not a positive whole number: {text!r}")
    return int(text)


def size(text: str) -> int:
    from worker.units import parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if value < 1:
        raise _bad(f"not a positive size: {text!r}")
    return value


def cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"not a number of cores: {text!r}") from None
    if not 0 < value < 1_000_000:
        raise _bad(f"not a number of cores above 0: {text!r}")
    return value


def io_weight(text: str) -> int:
    value = count(text)
    if value > 10_000:
        raise _bad(f"not an IO weight from 1 to 10000: {text!r}")
    return value


def controllers(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    known = ("memory", "cpu", "pids", "io")
    unknown = [n for n in names if n not in known]
    if unknown:
        expected = ", ".join(known)
        raise _bad(f"no controller {unknown[0]!r}; expected {expected}")
    return names


def milliseconds(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _bad(f"not a whole number of milliseconds: {text!r}")
    return int(text)


def uid_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit()) or not 0 < int(first) <= int(last) < 2**31:
        raise _bad(f"not a range of uids such as 61184-65519: {text!r}")
    return int(first), int(last)


def job_ref(text: str) -> str:
    """A job: its ID, or a name (kept as text: it goes into a URL path)."""
    if text.isascii() and text.isdigit():
        return text  # the common case, without loading worker.config's dataclasses
    from worker.config import JOB_NAME_PATTERN, JOB_NAME_RULE

    if re.fullmatch(JOB_NAME_PATTERN, text):
        return text
    raise _bad(f"a job is an ID or a name ({JOB_NAME_RULE}), not {text!r}")


def job_name(text: str) -> str:
    from worker.config import JOB_NAME_PATTERN, JOB_NAME_RULE

    if not re.fullmatch(JOB_NAME_PATTERN, text):
        raise _bad(f"a job name is {JOB_NAME_RULE}, not {text!r}")
    return text


def lines(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _bad(f"not a number of lines: {text!r}")
    return int(text)


def signal_name(text: str) -> str:
    """A signal as the API takes it: HUP, SIGHUP, hup or 1."""
    import signal

    name = text.upper()
    for candidate in signal.Signals:
        if name in (candidate.name, candidate.name[3:], str(candidate.value)):
            return candidate.name
    raise _bad(f"not a signal: {text!r} (try HUP, INT, TERM, USR1 or 15)")


# Compiled (and cached by re) when first used: most commands take no duration.
_DURATION = r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d)?)"
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds, from "30", "30s", "1.5m", "250ms", "1h30m"."""
    total, position = 0.0, 0
    for match in re.finditer(_DURATION, text):
        if match.start() != position or not match.group(0):
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if position != len(text) or not text or total <= 0:
        raise _bad(f"not a duration: {text!r} (try 30s, 5m or 1h)")
    return total


def env_pair(text: str) -> tuple[str, str | None]:
    """KEY=VALUE; or KEY alone: the caller's own KEY, if set (as docker)."""
    name, sep, value = text.partition("=")
    if not name:
        raise _bad(f"expected KEY=VALUE or KEY, not {text!r}")
    return name, value if sep else None
