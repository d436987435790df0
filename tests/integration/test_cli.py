"""The real `worker` CLI against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.conftest import Server, free_port


def test_run_prints_only_the_id_when_piped(server: Server) -> None:
    result = server.cli("run", "echo", "hello")
    assert result.returncode == 0, result.stderr
    job_id = int(result.stdout)
    server.wait_final(job_id)
    status = server.cli("status", str(job_id))
    assert status.returncode == 0
    assert b"completed" in status.stdout and b"echo hello" in status.stdout
    out = server.cli("out", str(job_id))
    assert (out.returncode, out.stdout) == (0, b"hello\n")


def test_everything_after_the_command_belongs_to_the_job(server: Server) -> None:
    job_id = int(server.cli("run", "ls", "-la", "/").stdout)
    state = server.wait_final(job_id)
    assert state["args"] == ["-la", "/"]
    assert state["status"] == "completed"
    listing = server.cli("out", str(job_id)).stdout.decode()
    assert listing.startswith("total ") and " .." in listing


def test_options_for_the_job_are_not_taken_by_worker(server: Server) -> None:
    result = server.cli("run", "--json", "echo", "--json", "--url", "x")
    job_id = json.loads(result.stdout)["id"]
    server.wait_final(job_id)
    assert server.output(job_id) == "--json --url x\n"


def test_json_flag_prints_the_api_reply(server: Server) -> None:
    job_id = server.run_job("echo", "hi")
    server.wait_final(job_id)
    status = json.loads(server.cli("--json", "status", str(job_id)).stdout)
    assert status["id"] == job_id and status["status"] == "completed"
    assert json.loads(server.cli("out", str(job_id), "--json").stdout) == {
        "id": job_id,
        "output": "hi\n",
        "offset": 0,
        "next_offset": 3,
        "size": 3,
        "truncated_bytes": 0,
        "evicted": False,
        "complete": True,
    }


def test_json_out_prints_every_page_as_a_line(server: Server) -> None:
    job_id = server.run_job("head", "-c", str(2 * 1024 * 1024 + 5), "/dev/zero")
    server.wait_final(job_id)
    lines = server.cli("--json", "out", str(job_id)).stdout.splitlines()
    pages = [json.loads(line) for line in lines]
    assert [page["offset"] for page in pages] == [0, 1 << 20, 2 << 20]
    assert [page["complete"] for page in pages] == [False, False, True]
    assert sum(len(page["output"]) for page in pages) == 2 * 1024 * 1024 + 5


def test_out_when_piped_is_exactly_the_bytes_written(server: Server) -> None:
    job_id = server.run_job("printf", "a\\0b\\377\\n[bold]x[/bold]")
    server.wait_final(job_id)
    assert server.cli("out", str(job_id)).stdout == b"a\x00b\xff\n[bold]x[/bold]"


def test_kill_through_the_cli(server: Server) -> None:
    job_id = int(server.cli("run", "sleep", "60").stdout)
    result = server.cli("kill", str(job_id))
    assert (result.returncode, result.stdout) == (0, b"killed\n")
    again = server.cli("kill", str(job_id))
    assert again.returncode == 1
    assert again.stderr.decode().strip() == f"Error: job {job_id} is not running (status: killed)"


def test_unknown_job_is_one_line_and_exit_1(server: Server) -> None:
    result = server.cli("status", "424242")
    assert result.returncode == 1
    assert result.stderr.decode() == "Error: job 424242 not found\n"
    assert result.stdout == b""


def test_invalid_action_is_one_line_and_a_pointer_to_the_help(server: Server) -> None:
    result = server.cli("frobnicate", "1")
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "Client error: invalid action 'frobnicate'\nsee `worker help`\n"
    )
    assert result.stdout == b""


def test_bad_job_id_is_a_client_error(server: Server) -> None:
    result = server.cli("status", "1abc")
    assert result.returncode == 2
    message, hint = result.stderr.decode().splitlines()
    assert message.startswith("Client error: argument JOB: a job is an ID or a name")
    assert hint == "see `worker status --help`"


def test_help_lists_every_action() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "help"], capture_output=True, check=False
    )
    assert result.returncode == 0
    for action in ("run", "status", "out, logs", "wait", "kill", "list, ps", "serve", "certs"):
        assert f"\n  {action} " in result.stdout.decode()


def test_refused_connection_is_one_line_with_a_hint() -> None:
    env = {**os.environ, "WORKER_URL": f"https://127.0.0.1:{free_port()}"}
    result = subprocess.run(
        [sys.executable, "-m", "worker", "status", "1"], env=env, capture_output=True, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "connection refused" in lines[0] and "worker serve" in lines[0]


def test_bob_cannot_see_alices_job_through_the_cli(server: Server) -> None:
    job_id = int(server.cli("run", "sleep", "30").stdout)
    result = server.cli("status", str(job_id), user="bob")
    assert result.returncode == 1
    assert result.stderr.decode() == f"Error: job {job_id} not found\n"
    assert server.cli("kill", str(job_id)).returncode == 0
