"""The server's log: one line per event on stderr, as text or as JSON.

Configured once per process (the supervisor, then each child with the same
settings, see child.py). Text lines read ``worker executor: job 3 started
...``; JSON lines carry the time, level, process and message, plus the
event's fields (``extra=`` of the log call: job, user, exit code...). Job
output and passwords are never logged.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

from worker.config import LogConfig

_current = LogConfig()

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName"}
)


def current() -> LogConfig:
    """The settings this process logs with (children are started with them)."""
    return _current


def adopt(config: LogConfig) -> None:
    """Take ``config`` as this process's settings, before ``configure``."""
    global _current  # noqa: PLW0603 - one logging setup per process, as logging's own
    _current = config


def configure(config: LogConfig, role: str = "") -> None:
    """Log worker's events at ``config.level`` and above, and other
    libraries' warnings, to stderr in ``config.format``."""
    adopt(config)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role) if config.format == "json" else TextFormatter(role))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("worker").setLevel(config.level.upper())


class TextFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self._prefix = f"worker {role}: " if role else "worker: "

    def format(self, record: logging.LogRecord) -> str:
        text = self._prefix + record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self._role = role or "serve"

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "process": self._role,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)
