"""sd_notify without systemd: datagrams to a socket the test binds."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from worker import notify


def test_ready_reaches_a_socket_path(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        assert notify.notify(notify.READY, "STATUS=up", environ={"NOTIFY_SOCKET": path})
        assert manager.recv(4096) == b"READY=1\nSTATUS=up"


def test_an_abstract_socket_is_reached_too() -> None:
    name = f"worker-test-notify-{os.getpid()}-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        assert notify.notify(notify.STOPPING, environ={"NOTIFY_SOCKET": "@" + name})
        assert manager.recv(4096) == b"STOPPING=1"


def test_without_a_manager_nothing_happens(tmp_path: Path) -> None:
    assert not notify.notify(notify.READY, environ={})
    assert not notify.notify(notify.READY, environ={"NOTIFY_SOCKET": "relative/path"})
    # A manager that went away: said, never raised.
    assert not notify.notify(notify.READY, environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
