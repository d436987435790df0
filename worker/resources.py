"""Where the shipped demo material (certificates, demo users) lives.

In a checkout it is the top-level ``certs/`` folder; in an installed package
the same files are ``worker/certs/`` (see pyproject.toml). Plain ``os.path``:
a short CLI command should not pay for importing pathlib or importlib.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing

if TYPE_CHECKING:
    from pathlib import Path

DEMO_CA = "ca.pem"
DEMO_CERT = "server.pem"
DEMO_KEY = "server-key.pem"
DEMO_USERS = "demo-users"

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def demo_path(name: str) -> str:
    installed = os.path.join(_PACKAGE, "certs", name)
    checkout = os.path.join(os.path.dirname(_PACKAGE), "certs", name)
    return installed if os.path.isfile(installed) else checkout


def demo_file(name: str) -> Path:
    """``demo_path`` as a Path, for the server side."""
    from pathlib import Path

    return Path(demo_path(name))
