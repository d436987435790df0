"""run --wait, list, timeout, env, cwd, send/eof and exact output, through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server, stop_server


def _cli(server: Server, *args: str, user: str = "alice") -> subprocess.Popen[bytes]:
    """The CLI in a process group of its own, so a test can 'press Ctrl-C'."""
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=server.cli_env(user),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("echo out; exit 3", 3)])
def test_run_wait_exits_with_the_jobs_code(server: Server, script: str, code: int) -> None:
    result = server.cli("run", "--wait", "sh", "-c", script)
    assert result.returncode == code, result.stderr
    assert result.stdout == (b"out\n" if "echo" in script else b"")  # only the job's output


def test_run_wait_of_a_killed_job_is_128_plus_the_signal(server: Server) -> None:
    waiting = _cli(server, "run", "-w", "sh", "-c", "echo started; sleep 60")
    assert waiting.stdout is not None
    assert waiting.stdout.readline() == b"started\n"
    job_id = server.request("GET", "/jobs?status=running").json()["jobs"][0]["id"]
    assert server.request("PUT", f"/jobs/{job_id}/kill").status == 200
    assert waiting.wait(30) == 128 + signal.SIGTERM


def test_run_wait_timeout_kills_and_says_why(server: Server) -> None:
    result = server.cli("run", "-w", "--timeout", "300ms", "sleep", "30")
    assert result.returncode == 128 + signal.SIGTERM
    job = server.request("GET", "/jobs").json()["jobs"][0]
    assert (job["status"], job["reason"]) == ("killed", "timeout")


def test_run_wait_of_a_command_that_cannot_start_is_127(server: Server) -> None:
    result = server.cli("run", "-w", "no-such-command-anywhere")
    assert result.returncode == 127
    assert result.stdout == b"no-such-command-anywhere: command not found\n"


def test_interrupt_with_kill_on_interrupt_kills_the_job(server: Server) -> None:
    waiting = _cli(server, "run", "-w", "--kill-on-interrupt", "sh", "-c", "echo started; sleep 60")
    assert waiting.stdout is not None and waiting.stdout.readline() == b"started\n"
    job_id = server.request("GET", "/jobs?status=running").json()["jobs"][0]["id"]
    os.killpg(waiting.pid, signal.SIGINT)
    assert waiting.wait(30) == 128 + signal.SIGTERM
    assert server.status(job_id)["status"] == "killed"


def test_interrupt_without_a_terminal_detaches(server: Server) -> None:
    waiting = _cli(server, "run", "-w", "sh", "-c", "echo started; sleep 60")
    assert waiting.stdout is not None and waiting.stdout.readline() == b"started\n"
    job_id = server.request("GET", "/jobs?status=running").json()["jobs"][0]["id"]
    os.killpg(waiting.pid, signal.SIGINT)
    assert waiting.wait(30) == 130
    assert server.status(job_id)["status"] == "running"  # detached, not killed
    server.request("PUT", f"/jobs/{job_id}/kill")


def test_out_follow_prints_live_and_ctrl_c_leaves_the_job(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo one; sleep 60")
    following = _cli(server, "out", "-f", str(job_id))
    assert following.stdout is not None and following.stdout.readline() == b"one\n"
    os.killpg(following.pid, signal.SIGINT)
    assert following.wait(30) == 130
    assert server.status(job_id)["status"] == "running"
    server.request("PUT", f"/jobs/{job_id}/kill")
    finished = server.cli("out", "-f", str(job_id))
    assert (finished.returncode, finished.stdout) == (0, b"one\n")


def test_binary_output_round_trips_through_a_file(server: Server, tmp_path: Path) -> None:
    pattern = bytes(range(256)) * 4096  # 1 MiB with every byte value
    source = server.give("pattern.bin", pattern)
    job_id = server.run_job("cat", str(source))
    server.wait_final(job_id)
    target = tmp_path / "copy.bin"
    with open(target, "wb") as out:
        subprocess.run(
            [sys.executable, "-m", "worker", "out", str(job_id)],
            stdout=out,
            env={**os.environ, "WORKER_URL": server.url},
            check=True,
            timeout=60,
        )
    assert target.read_bytes() == pattern
    followed = server.cli("out", "-f", str(job_id))
    assert followed.stdout == pattern


@pytest.fixture
def two_users(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path, "--rate-limit-ms", "0")
    yield server
    stop_server(server.process)


def test_list_shows_only_the_callers_jobs_newest_first(two_users: Server) -> None:
    server = two_users
    first = server.run_job("true")
    server.run_job("true", user="bob")
    second = server.run_job("sleep", "30")
    server.wait_final(first)
    mine = json.loads(server.cli("list", "--json").stdout)["jobs"]
    assert [j["id"] for j in mine] == [second, first]
    running = json.loads(server.cli("list", "--running", "--json").stdout)["jobs"]
    assert [j["id"] for j in running] == [second]
    table = server.cli("list").stdout.decode()
    assert table.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "EXIT",
        "STARTED",
        "DURATION",
        "COMMAND",
    ]
    assert "sleep 30" in table and "running" in table
    bobs = json.loads(server.cli("list", "--json", user="bob").stdout)["jobs"]
    assert [j["command"] for j in bobs] == ["true"]
    server.request("PUT", f"/jobs/{second}/kill")


def test_env_and_cwd_from_the_cli(server: Server) -> None:
    place = server.home() / "place"
    place.mkdir(exist_ok=True)
    place.chmod(0o755)
    result = server.cli(
        "run",
        "-w",
        "-e",
        "GREETING=hi there",
        "-e",
        "EMPTY=",
        "--cwd",
        str(place),
        "sh",
        "-c",
        'echo "$GREETING|$EMPTY|$(pwd)"',
    )
    assert result.stdout.decode() == f"hi there||{place}\n"
    missing = server.cli("run", "-w", "--cwd", str(place / "nope"), "pwd")
    assert missing.returncode == 127
    assert b"cannot change to this directory" in missing.stdout


def test_send_text_and_eof(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "read a; echo got $a; cat")
    assert server.cli("send", str(job_id), "first").returncode == 0
    deadline = time.monotonic() + 10
    while server.output(job_id) != "got first\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert server.cli("send", str(job_id), "-n", "no newline").returncode == 0
    assert server.cli("send", str(job_id), "--eof").returncode == 0
    assert server.wait_final(job_id)["status"] == "completed"
    assert server.output(job_id) == "got first\nno newline"
    late = server.cli("send", str(job_id), "late")
    assert late.returncode == 1
    assert late.stderr.decode().startswith(f"Error: job {job_id} is not running")


def test_the_unanswered_job_still_blocks(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo before; read x; echo after")
    deadline = time.monotonic() + 10
    while server.output(job_id) != "before\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert server.status(job_id)["status"] == "running"
    server.cli("send", str(job_id), "now")
    assert server.wait_final(job_id)["status"] == "completed"
    assert server.output(job_id) == "before\nafter\n"


def test_a_follow_is_one_request_for_the_rate_limit(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "100")
    try:
        job_id = server.run_job("sh", "-c", "read go; sleep 1; echo done")
        follower = _cli(server, "out", "-f", str(job_id))  # waits out a 429 itself
        deadline = time.monotonic() + 30
        while server.request("POST", f"/jobs/{job_id}/stdin", raw_body=b"go\n").status != 200:
            assert time.monotonic() < deadline  # 429 until 100 ms after the follow was admitted
        # The follow goes on for a second; meanwhile other requests are
        # limited only by their own spacing (never told to wait for the
        # follow): admitted while the job still runs.
        while (reply := server.request("GET", f"/jobs/{job_id}/status")).status == 429:
            assert reply.json()["retry_after_ms"] <= 100
            assert time.monotonic() < deadline
        assert reply.json()["status"] == "running"
        assert follower.poll() is None  # still following
        assert follower.wait(30) == 0
        assert follower.stdout is not None and follower.stdout.read() == b"done\n"
    finally:
        stop_server(server.process)
