"""Processes of a job do not outlive its kill, nor the server."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil

from tests.integration.conftest import Server, start_server, stop_server


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if _alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _pid_from_output(server: Server, job_id: int) -> int:
    deadline = time.monotonic() + 10
    while not server.output(job_id).strip():
        assert time.monotonic() < deadline, "the job never printed its child's PID"
        time.sleep(0.05)
    return int(server.output(job_id).split()[0])


def test_kill_reaches_an_orphan_that_ignores_term(server: Server) -> None:
    # The middle shell exits at once, so the TERM-ignoring sleep is orphaned
    # (reparented away from the job's leader) but stays in the job's session.
    job_id = server.run_job(
        "sh", "-c", "sh -c '(trap \"\" TERM; exec sleep 4321) & echo $!'; exec sleep 1234"
    )
    orphan = _pid_from_output(server, job_id)
    assert _alive(orphan)
    leader = server.status(job_id)["pid"]
    assert orphan not in {c.pid for c in psutil.Process(leader).children(recursive=True)}
    reply = server.request("PUT", f"/jobs/{job_id}/kill")
    assert reply.json() == {"id": job_id, "status": "killed"}
    assert not _alive(orphan)  # gone by the time the kill is answered


def test_processes_left_by_an_ended_job_die_with_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        job_id = server.run_job("sh", "-c", "sleep 5555 & echo $!")
        leftover = _pid_from_output(server, job_id)
        assert server.wait_final(job_id)["status"] == "completed"
        assert _alive(leftover)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        assert _wait_gone([leftover]) == []
    finally:
        stop_server(server.process)


def test_losing_the_supervisor_takes_everything_down(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        job_id = server.run_job("sleep", "300")
        job_pid = server.wait_for(job_id, lambda s: s["pid"] is not None)["pid"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        assert _wait_gone([server.api_pid, server.executor_pid, job_pid]) == []
    finally:
        stop_server(server.process)
