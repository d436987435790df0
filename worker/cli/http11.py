"""Moved to ``worker.client.http11`` (the client package owns it); kept so
that older imports still work."""

from __future__ import annotations

from worker.client.http11 import Headers, HttpConnection, HttpError, Interim, Reply

__all__ = ["Headers", "HttpConnection", "HttpError", "Interim", "Reply"]
