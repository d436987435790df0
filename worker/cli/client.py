"""Moved to ``worker.client.transport`` (the CLI is built on
``worker.client.Client``); kept so that older imports still work."""

from __future__ import annotations

from worker.client.transport import (
    MAX_RATE_LIMIT_WAIT,
    ApiClient,
    Response,
    Streamed,
    Trace,
    client_context,
    raise_translated,
)

__all__ = [
    "MAX_RATE_LIMIT_WAIT",
    "ApiClient",
    "Response",
    "Streamed",
    "Trace",
    "client_context",
    "raise_translated",
]
