"""Failed logins in the server's log, aggregated: a flood is a few lines.

The first failure of a user name from a source (a Unix uid, see gate.py) is
logged at once; more within the next minute are counted and logged as one
line when it ends. The user name is logged, never the password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from worker.api.auth import parse_basic
from worker.errors import Unauthorized

log = logging.getLogger("worker.api")

WINDOW = 60.0
# Names and sources told apart within one window; more are counted together.
MAX_KEYS = 1000
OTHERS = ("(other names)", "(other sources)")


class FailedLogins:
    def __init__(self, window: float = WINDOW) -> None:
        self._window = window
        self._more: dict[tuple[str, str], int] = {}  # failures after the first, per window
        self._flush: asyncio.TimerHandle | None = None

    def record(self, header: str | None, source: Hashable) -> None:
        try:
            name = parse_basic(header)[0]
        except Unauthorized:
            return  # not a login attempt with a name
        key = (name, describe(source))
        if key not in self._more and len(self._more) >= MAX_KEYS:
            key = OTHERS
        if key in self._more:
            self._more[key] += 1
        else:
            self._more[key] = 0
            log.warning(
                "failed login for user %r from %s",
                key[0],
                key[1],
                extra={"event": "login_failed", "user": key[0], "source": key[1], "count": 1},
            )
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self._window, self.flush)

    def flush(self) -> None:
        """Log what was counted since the window began, and begin anew."""
        self._flush = None
        more, self._more = self._more, {}
        for (name, source), count in more.items():
            if count:
                log.warning(
                    "%d more failed logins for user %r from %s in the last %g s",
                    count,
                    name,
                    source,
                    self._window,
                    extra={"event": "login_failed", "user": name, "source": source, "count": count},
                )


def describe(source: Hashable) -> str:
    if isinstance(source, tuple) and len(source) == 2 and source[0] == "uid":
        return f"uid {source[1]}"
    if isinstance(source, tuple) and len(source) == 2 and source[0] == "connection":
        return f"connection {source[1]}"
    return "an unidentified local client"
