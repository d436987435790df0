"""Where the shipped demo material (certificates, demo users) lives.

In a checkout it is the top-level ``certs/`` folder; in an installed package
the same files are the ``worker.certs`` package (see pyproject.toml).
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path

DEMO_CA = "ca.pem"
DEMO_CERT = "server.pem"
DEMO_KEY = "server-key.pem"
DEMO_USERS = "demo-users"


def demo_file(name: str) -> Path:
    candidates = [Path(__file__).resolve().parent.parent / "certs" / name]
    # In a plain checkout that was never installed, certs/ is not a package.
    with contextlib.suppress(ModuleNotFoundError):
        candidates.insert(0, Path(str(resources.files("worker.certs").joinpath(name))))
    for path in candidates:
        if path.is_file():
            return path
    return candidates[-1]
