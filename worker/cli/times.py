"""Times as people read them: local and absolute, relative ("2m ago"), and
durations ("1.25s", "2m05s")."""

from __future__ import annotations

import datetime


def parse(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def when(value: str | None) -> str:
    """``2026-11-28 10:02:03 CET``, in the local time zone."""
    if not value:
        return "-"
    return parse(value).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def ago(value: str | None, at: datetime.datetime | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; a date past a month."""
    if not value:
        return "-"
    moment = parse(value)
    seconds = ((at or now()) - moment).total_seconds()
    if seconds < 1:
        return "just now"
    for unit, size in (("s", 60), ("m", 60), ("h", 24)):
        if seconds < size:
            return f"{int(seconds)}{unit} ago"
        seconds /= size
    if seconds < 31:
        return f"{int(seconds)}d ago"
    return moment.astimezone().strftime("%Y-%m-%d")


def duration(start: str | None, end: str | None, at: datetime.datetime | None = None) -> str:
    """How long from ``start`` to ``end`` (or to now, for a running job)."""
    if not start:
        return ""
    finish = parse(end) if end else (at or now())
    seconds = max(0.0, (finish - parse(start)).total_seconds())
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days}d{hours:02d}h{minutes:02d}m"
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
