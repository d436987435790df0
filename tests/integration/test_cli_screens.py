"""What a person sees at a terminal, asserted in-process: the real CLI
against a real server, printing to a made-up terminal (tests/cli/mockenv)."""

from __future__ import annotations

import time
from typing import Any

from tests.cli.mockenv import MockEnvironment, run
from tests.integration.conftest import USERS, Server


def cli(
    server: Server, *argv: str, user: str = "alice", **options: Any
) -> tuple[int, MockEnvironment]:
    environ = {"WORKER_URL": server.url, "WORKER_USER": user, "WORKER_PASSWORD": USERS[user]}
    return run(*argv, environ=environ, **options)


def wait_for_output(server: Server, job_id: int, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in server.output(job_id):
        assert time.monotonic() < deadline, server.output(job_id)
        time.sleep(0.02)


def test_run_says_which_job_started_and_how_to_reach_it(server: Server) -> None:
    status, env = cli(server, "run", "--name", "greet", "echo", "hello")
    assert status == 0
    first, second = env.out.splitlines()
    job_id = server.request("GET", "/jobs/greet/status").json()["id"]
    assert first == f"Started job {job_id} (greet): echo hello"
    assert "worker out -f greet" in second and "worker kill greet" in second


def test_out_has_a_header_with_the_status_then_the_bytes(server: Server) -> None:
    job_id = server.run_job("echo", "hello")
    server.wait_final(job_id)
    status, env = cli(server, "out", str(job_id))
    assert status == 0
    header, output = env.out.splitlines()
    assert header.startswith(f"job {job_id}  echo hello  completed (exit code 0) ──")
    assert output == "hello"


def test_out_follow_ends_with_how_the_job_ended(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo one; sleep 0.2; echo two; exit 4")
    status, env = cli(server, "out", "-f", str(job_id))
    assert status == 0
    header, *output = env.out.splitlines()
    assert header.startswith(
        f"job {job_id}  sh -c 'echo one; sleep 0.2; echo two; exit 4'  running ─"
    )
    assert output == ["one", "two"]
    assert env.err == f"worker: job {job_id} failed (exit code 4)\n"


def test_run_wait_says_started_and_ended_on_stderr(server: Server) -> None:
    status, env = cli(server, "run", "-w", "sh", "-c", "echo out; exit 3")
    assert status == 3
    assert env.out == "out\n"
    started, ended = env.err.splitlines()
    job_id = int(started.split()[2])
    assert started == f"worker: job {job_id} started; Ctrl-C to stop waiting"
    assert ended == f"worker: job {job_id} failed (exit code 3)"


def test_kill_says_what_it_does_while_the_grace_period_runs(server: Server) -> None:
    # A job that ignores SIGTERM (exec keeps the ignored disposition).
    job_id = server.run_job("sh", "-c", "trap '' TERM; echo ready; exec sleep 60")
    wait_for_output(server, job_id, "ready")
    status, env = cli(server, "kill", str(job_id))
    assert status == 0
    assert env.err.startswith(f"worker: job {job_id}: SIGTERM sent; SIGKILL in ")
    assert env.err.endswith(" s if it still runs\n")
    assert env.out == f"Job {job_id} killed\n"
    assert server.status(job_id)["signal"] == 9


def test_a_quick_kill_says_nothing_while_it_works(server: Server) -> None:
    job_id = server.run_job("sleep", "60")
    status, env = cli(server, "kill", str(job_id))
    assert (status, env.err, env.out) == (0, "", f"Job {job_id} killed\n")


def test_status_and_list_say_why_a_job_could_not_start(server: Server) -> None:
    job_id = server.run_job("echi", "hello")
    server.wait_final(job_id)
    status, env = cli(server, "status", str(job_id))
    assert status == 0
    rows = dict(line.rstrip().split(None, 1) for line in env.out.splitlines())
    assert rows["Status"] == "failed (could not start)"
    assert rows["Error"] == "echi: command not found"
    listing = cli(server, "list", "--limit", "5", width=200)[1].out
    row = next(line for line in listing.splitlines() if line.split()[0] == str(job_id))
    assert row.rstrip().endswith("echi hello  (echi: command not found)")


def test_list_on_a_narrow_terminal_keeps_id_and_status(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "sleep 30; " + "echo a long command line; " * 8)
    status, env = cli(server, "ps", "--running", width=50)
    assert status == 0
    row = next(line for line in env.out.splitlines() if line.split()[0] == str(job_id))
    assert row.split()[1] == "running"
    assert row.rstrip().endswith("…")
    assert len(row.rstrip()) <= 50
    server.request("PUT", f"/jobs/{job_id}/kill")
