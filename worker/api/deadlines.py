"""When a connection has had long enough: the deadline arithmetic, without Sanic.

A client sets the pace only while the server waits for it, and each wait has a
deadline that more bytes cannot push back: the TLS handshake and the first
request's head are timed from accept, a later request's head from its first
byte, a body must keep up a minimum rate after a grace period, and an idle
keep-alive connection lasts ``keep_alive`` seconds. Everything is monotonic
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from worker.config import (
    DEFAULT_BODY_GRACE,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MIN_BODY_RATE,
    ApiConfig,
)
from worker.errors import ConfigError

# After sending its close_notify the server waits this long for the peer's
# before it drops the socket; a peer that never answers cannot hold it longer.
TLS_SHUTDOWN_TIMEOUT = 2.0
# Deadlines are checked this late at worst.
SHORTEST_NAP = 0.25


class Wait(Enum):
    """What the server is waiting for on a connection."""

    HEAD = "a request head"  # the first since accept, any later one since its first byte
    BODY = "a request body"
    IDLE = "the next request on a kept-alive connection"
    SERVER = "the server's own answer"  # handler or response; not the client's pace


@dataclass(frozen=True, slots=True)
class Deadlines:
    handshake: float = DEFAULT_HANDSHAKE_TIMEOUT
    header: float = DEFAULT_HEADER_TIMEOUT
    min_body_rate: float = DEFAULT_MIN_BODY_RATE
    body_grace: float = DEFAULT_BODY_GRACE
    keep_alive: float = DEFAULT_KEEP_ALIVE_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("handshake", "header", "min_body_rate", "body_grace", "keep_alive"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"the {name.replace('_', ' ')} deadline must be positive")

    @classmethod
    def of(cls, config: ApiConfig) -> Deadlines:
        return cls(
            handshake=config.handshake_timeout,
            header=config.header_timeout,
            min_body_rate=config.min_body_rate,
            body_grace=config.body_grace,
            keep_alive=config.keep_alive_timeout,
        )

    @property
    def longest_nap(self) -> float:
        """The longest a connection's check may sleep. A head or a body can
        start at any moment after the last check and is never due sooner than
        this, so no deadline is ever overshot by a check that slept too long."""
        return min(self.header, self.body_grace)

    def head_due(self, head_from: float) -> float:
        return head_from + self.header

    def idle_due(self, idle_from: float) -> float:
        return idle_from + self.keep_alive

    def body_due(self, body_from: float, received: int) -> float:
        """When a body that started at ``body_from`` and has ``received``
        bytes so far falls behind the minimum rate."""
        return body_from + self.body_grace + received / self.min_body_rate

    def next_check(self, now: float, due: float) -> float:
        """Seconds to sleep before looking again (``due`` is in the future).

        Never less than ``SHORTEST_NAP``: a body that trickles in keeps
        moving its own deadline a little further, and checks made exactly
        on time would close in on the moment it falls behind without ever
        reaching it."""
        return max(SHORTEST_NAP, min(due - now, self.longest_nap))
