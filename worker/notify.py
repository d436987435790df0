"""systemd's readiness protocol (sd_notify), without a dependency: one
datagram to ``$NOTIFY_SOCKET`` per state change. Outside systemd (no
variable) every call does nothing."""

from __future__ import annotations

import contextlib
import os
import socket

READY = "READY=1"
STOPPING = "STOPPING=1"


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``fields`` (``READY=1``, ``STATUS=...``) to the service manager;
    whether there was one to tell. Never raises: a manager that went away
    must not take the server with it."""
    where = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not where or where[0] not in "/@":
        return False
    # "@name" is a socket in the abstract namespace: a leading NUL byte.
    address = "\0" + where[1:] if where[0] == "@" else where
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto("\n".join(fields).encode(), address)
        return True
    return False
