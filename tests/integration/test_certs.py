"""`worker certs DIR` makes material a server and a client can use at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import start_server, stop_server


def test_own_certificates_work_and_the_demo_ca_is_then_refused(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "worker", "certs", str(tmp_path / "own")],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    own = tmp_path / "own"
    assert sorted(p.name for p in own.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    assert (own / "server-key.pem").stat().st_mode & 0o077 == 0
    server = start_server(
        tmp_path, "--cert", str(own / "server.pem"), "--key", str(own / "server-key.pem")
    )
    try:
        env = {**os.environ, "WORKER_URL": server.url}
        ok = subprocess.run(
            [sys.executable, "-m", "worker", "--ca", str(own / "ca.pem"), "run", "true"],
            env=env,
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert ok.returncode == 0, ok.stderr
        refused = subprocess.run(
            [sys.executable, "-m", "worker", "run", "true"],
            env=env,
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert refused.returncode == 1
        lines = refused.stderr.decode().splitlines()
        assert len(lines) == 1 and "not trusted" in lines[0], lines
    finally:
        stop_server(server.process)


def test_cert_and_key_go_together() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "serve", "--cert", "x.pem"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.decode().startswith("Client error: --cert and --key go together")
