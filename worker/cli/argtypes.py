"""Argument types for the command line: each turns text into a checked value."""

from __future__ import annotations

import argparse
import re


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds: {text!r}")
    return value


def port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def byte_count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return int(text)


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def milliseconds(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}")
    return int(text)


def uid_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit()) or not 0 < int(first) <= int(last) < 2**31:
        raise argparse.ArgumentTypeError(f"not a range of uids such as 61184-65519: {text!r}")
    return int(first), int(last)


def job_id(text: str) -> str:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"job ID must be a positive integer, not {text!r}")
    return text


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d)?)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds, from "30", "30s", "1.5m", "250ms", "1h30m"."""
    total, position = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position or not match.group(0):
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if position != len(text) or not text or total <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m or 1h)")
    return total


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return name, value
