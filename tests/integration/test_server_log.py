"""The server tells its operator what happens: jobs' starts and ends, kills
and why, failed logins (without the password), its start and its stop; as
text or JSON lines. Never a password, never a job's output."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import Server, start_server, stop_server


def wait_for_line(server: Server, text: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        for line in server.stderr_path.read_text().splitlines():
            if text in line:
                return line
        assert time.monotonic() < deadline, server.stderr_path.read_text()
        time.sleep(0.02)


def test_text_lines_say_who_ran_what_and_how_it_ended(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "exit 3")
    server.wait_final(job_id)
    started = wait_for_line(server, f"job {job_id} of alice started")
    assert started.startswith("worker executor: ") and started.endswith("sh -c 'exit 3'")
    ended = wait_for_line(server, f"job {job_id} of alice failed")
    assert "(exit code 3) after " in ended


def test_json_lines_of_a_servers_life(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, "--log-format", "json", "--kill-grace", "1", "--rate-limit-ms", "0"
    )
    try:
        done = server.run_job("sh", "-c", "echo $((6 * 7))-printed")
        server.wait_final(done)
        killed = server.run_job("sleep", "60")
        assert server.request("PUT", f"/jobs/{killed}/kill").status == 200
        failed = server.run_job("no-such-command")
        server.wait_final(failed)
        for _ in range(3):
            wrong = {"Authorization": "Basic Ym9iOnNlY3JldC1ndWVzcw=="}  # bob:secret-guess
            reply = server.request("GET", "/jobs", user=None, headers=wrong)
            assert reply.status in (401, 429)
    finally:
        assert stop_server(server.process) == 0
    log = server.stderr_path.read_text()
    events = [json.loads(line) for line in log.splitlines()]
    assert all({"time", "level", "process", "message"} <= set(e) for e in events)

    def only(event: str, **fields: Any) -> dict[str, Any]:
        found = [e for e in events if e.get("event") == event and fields.items() <= e.items()]
        assert len(found) == 1, (event, fields, events)
        return found[0]

    assert only("job_started", job=done, user="alice")["command"][0] == "sh"
    ended = only("job_ended", job=done, status="completed", exit_code=0)
    assert ended["duration"] >= 0
    assert only("job_kill", job=killed, reason="kill")["process"] == "executor"
    assert only("job_ended", job=killed, status="killed")["signal"] == 15
    assert only("job_ended", job=failed)["error"] == "no-such-command: command not found"
    login = only("login_failed", user="bob")
    assert login["level"] == "warning" and login["source"].startswith("uid ")
    assert any(e.get("event") == "ready" for e in events)
    assert events[-1]["message"].startswith("stopped")
    assert "secret-guess" not in log and "Ym9iOnNlY3JldC1ndWVzcw" not in log  # no password
    assert "42-printed" not in log  # no job output
