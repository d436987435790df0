"""`worker serve` as a whole: start-up line, stop signals, bad start-ups, install."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import alive
from tests.integration.conftest import Server, start_server, stop_server
from worker.executor.launcher import native_spawner


def _job_pids(server: Server, count: int) -> list[int]:
    ids = [server.run_job("sleep", "300") for _ in range(count)]
    ids.append(server.run_job("sh", "-c", "trap '' TERM INT; sleep 300 & wait"))
    pids = []
    for job_id in ids:
        state = server.wait_for(job_id, lambda s: s["pid"] is not None)
        pids.append(state["pid"])
    return pids


def _gone(pids: list[int], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_stop_signal_stops_both_processes_and_every_job(tmp_path: Path, how: str) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert {server.api_pid, server.executor_pid} <= {c.pid for c in children}
        pids = _job_pids(server, 3)
        descendants = [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]
        if how == "SIGTERM":
            server.process.send_signal(signal.SIGTERM)
        else:
            # A terminal sends SIGINT to its whole foreground group: ours.
            os.killpg(server.process.pid, signal.SIGINT)
        assert server.process.wait(30) == 0
        assert _gone([c.pid for c in children] + pids + descendants)
    finally:
        stop_server(server.process)


def test_start_up_line_says_where_it_listens_and_how_jobs_run(server: Server) -> None:
    where, _, jobs = server.startup.partition("; jobs: ")
    assert where == (
        f"worker listening on {server.url} "
        f"(api pid {server.api_pid}, executor pid {server.executor_pid})"
    )
    users = "a uid per user" if os.geteuid() == 0 else "the server's own uid (single-tenant)"
    assert jobs.startswith(users), jobs
    assert "cgroup" in jobs  # how their processes are tracked
    compiled = native_spawner() is not None  # the same package as the server's
    said = "by the compiled spawner" if compiled else "(slower: none was compiled at install)"
    assert jobs.endswith(said), jobs
    # And it answers there.
    assert server.request("GET", "/jobs/1/status", user=None).status == 401


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lines = _serve_fails("--port", str(port))
    assert lines == [f"worker: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_missing_users_file_is_a_one_line_error(tmp_path: Path) -> None:
    lines = _serve_fails("--port", "1", "--users", str(tmp_path / "nope"))
    assert len(lines) == 1 and "cannot read users file" in lines[0], lines


def _serve_fails(*flags: str) -> list[str]:
    """Run `worker serve` that must fail to start: exit 1; its stderr lines."""
    result = subprocess.run(
        [sys.executable, "-m", "worker", "serve", *flags],
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    return result.stderr.decode().strip().splitlines()


def test_installed_package_finds_its_demo_material(tmp_path: Path) -> None:
    """From a directory with no checkout, the installed `worker` serves and
    connects with the demo material it carries."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKER_CA")}
    where = subprocess.run(
        [sys.executable, "-c", "import worker.resources as r; print(r.demo_file('ca.pem'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_file(), where
    server = start_server(
        tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0", cwd=tmp_path, env=env
    )
    try:
        worker_bin = shutil.which("worker", path=str(Path(sys.executable).parent))
        assert worker_bin, "the console script is installed beside the interpreter"
        result = subprocess.run(
            [worker_bin, "run", "echo", "installed"],
            cwd=tmp_path,
            capture_output=True,
            env={**env, "WORKER_URL": server.url},
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        job_id = int(result.stdout)
        assert server.wait_final(job_id)["status"] == "completed"
    finally:
        stop_server(server.process)
