"""`worker serve` as PID 1 of a new PID namespace, as in a container."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import (
    JOB_PYTHON,
    Server,
    free_port,
    server_state,
    stop_server,
    wait_listening,
)

DOUBLE_FORK = "import os\nif os.fork() == 0:\n    os.setsid()\n    os.fork()\n"


def _namespace_init(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Server, psutil.Process]:
    """Start `unshare ... worker serve`; return it, a client for the server
    inside, and the namespace's init process (worker serve) seen from here."""
    if os.geteuid() != 0:
        pytest.skip("a new PID namespace needs root here: not running as root")
    if shutil.which("unshare") is None:
        pytest.skip("util-linux `unshare` is not installed")
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace: {probe.stderr.decode().strip()}")
    port = free_port()
    stderr = tmp_path / "serve.stderr"
    with open(stderr, "wb") as err:
        outer = subprocess.Popen(
            [
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                sys.executable,
                "-m",
                "worker",
                "serve",
                "--port",
                str(port),
                "--rate-limit-ms",
                "0",
                "--kill-grace",
                "1",
                *server_state(),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    wait_listening(outer, stderr)
    (init,) = psutil.Process(outer.pid).children()
    # The PIDs it prints are the namespace's own; this test needs none of them.
    return outer, Server(outer, port, f"https://127.0.0.1:{port}", stderr, 0, 0), init


def _pid_in_namespace(host_pid: int) -> int:
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError("no NSpid line")


def test_serve_as_pid_1_reaps_orphans_and_stops_cleanly(tmp_path: Path) -> None:
    outer, server, init = _namespace_init(tmp_path)
    try:
        assert _pid_in_namespace(init.pid) == 1
        ids = [server.run_job("true") for _ in range(50)]
        ids += [server.run_job(JOB_PYTHON, "-c", DOUBLE_FORK) for _ in range(10)]
        for job_id in ids:
            assert server.wait_final(job_id)["status"] == "completed"
        sleeper = server.status(server.run_job("sleep", "300"))
        assert sleeper["pid"] != 1
        everyone = [init, *init.children(recursive=True)]
        deadline = time.monotonic() + 15
        while any(_zombie(p) for p in init.children(recursive=True)):
            assert time.monotonic() < deadline, [p for p in everyone if _zombie(p)]
            time.sleep(0.1)
        init.send_signal(signal.SIGTERM)
        assert outer.wait(30) == 0
        assert [p for p in everyone if _zombie(p) is not None] == []
    finally:
        stop_server(outer)


def _zombie(process: psutil.Process) -> bool | None:
    """True for a zombie, False for a live process, None once it is gone."""
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return None
