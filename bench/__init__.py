"""The benchmark of issue 6: worker against the ceilings of the same machine.

``python -m bench`` (or ``tox -e bench``) starts its own ``worker serve`` and
its own baselines, measures every figure of the issue's table several times,
prints the medians as a table and writes them to ``bench/results/latest.json``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CERTS = ROOT / "certs"
CA = CERTS / "ca.pem"
CERT = CERTS / "server.pem"
KEY = CERTS / "server-key.pem"
RESULTS = Path(__file__).resolve().parent / "results"
USER = "alice"
PASSWORD = "wonderland"  # the demo user of certs/demo-users
