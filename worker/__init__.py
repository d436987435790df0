"""worker: run Linux commands as jobs behind an HTTPS API."""

from __future__ import annotations

__version__ = "0.1.0"
