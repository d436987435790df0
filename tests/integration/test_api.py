"""The HTTPS API of a real `worker serve`, end to end."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import psutil

from tests.helpers import alive
from tests.integration.conftest import Server


def test_echo_completes_with_its_output(server: Server) -> None:
    reply = server.request("POST", "/jobs/run", {"command": "echo", "args": ["Hello,", "world!"]})
    assert reply.status == 201
    job_id = reply.json()["id"]
    assert isinstance(job_id, int)
    state = server.wait_final(job_id)
    assert state["status"] == "completed"
    assert state["exit_code"] == 0
    assert state["command"] == "echo" and state["args"] == ["Hello,", "world!"]
    assert set(state) >= {
        "id",
        "status",
        "exit_code",
        "pid",
        "command",
        "args",
        "started_at",
        "ended_at",
    }
    started = datetime.fromisoformat(state["started_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(state["ended_at"].replace("Z", "+00:00"))
    assert started.utcoffset() is not None and started <= ended
    assert server.request("GET", f"/jobs/{job_id}/out").json() == {
        "id": job_id,
        "output": "Hello, world!\n",
        "offset": 0,
        "next_offset": 14,
        "size": 14,
        "truncated_bytes": 0,
        "evicted": False,
        "complete": True,
    }


def test_ids_count_up_from_one_and_are_not_reused(fresh_server: Server) -> None:
    ids = [fresh_server.run_job("true") for _ in range(3)]
    ids.append(fresh_server.run_job("no-such-command-here"))
    assert ids == [1, 2, 3, 4]


def test_unknown_command_fails_with_a_readable_reason(server: Server) -> None:
    job_id = server.run_job("echi", "hello")
    state = server.wait_final(job_id)
    assert state["status"] == "failed"
    assert state["exit_code"] is None
    assert server.output(job_id) == "echi: command not found\n"


def test_nonzero_exit_is_failed_with_its_code(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo oops >&2; exit 3")
    state = server.wait_final(job_id)
    assert (state["status"], state["exit_code"]) == ("failed", 3)
    assert server.output(job_id) == "oops\n"


def test_stdout_and_stderr_are_merged_in_write_order(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2")
    server.wait_final(job_id)
    assert server.output(job_id) == "1\n2\n3\n4\n"


def test_job_reading_stdin_blocks_and_shows_earlier_output(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "echo before; read x; echo after")
    deadline = time.monotonic() + 10
    while server.output(job_id) != "before\n":
        assert time.monotonic() < deadline, server.output(job_id)
        time.sleep(0.05)
    assert server.status(job_id)["status"] == "running"
    reply = server.request("PUT", f"/jobs/{job_id}/kill")
    assert reply.json() == {"id": job_id, "status": "killed"}


def test_kill_running_job_takes_its_whole_tree(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "sleep 300 & sleep 300 & echo $!; wait")
    server.wait_for(job_id, lambda s: s["pid"] is not None)
    deadline = time.monotonic() + 10
    while not server.output(job_id).strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    leader = psutil.Process(server.status(job_id)["pid"])
    tree = [leader, *leader.children(recursive=True)]
    assert len(tree) == 3
    reply = server.request("PUT", f"/jobs/{job_id}/kill")
    assert reply.status == 200
    assert reply.json() == {"id": job_id, "status": "killed"}
    for process in tree:
        assert not alive(process), process
    state = server.status(job_id)
    assert state["status"] == "killed"
    assert state["ended_at"] is not None


def test_kill_finished_job_is_conflict_with_its_status(server: Server) -> None:
    job_id = server.run_job("true")
    server.wait_final(job_id)
    reply = server.request("PUT", f"/jobs/{job_id}/kill")
    assert reply.status == 409
    assert reply.json() == {"error": f"job {job_id} is not running (status: completed)"}


def test_kill_racing_the_job_end_is_killed_or_conflict(server: Server) -> None:
    for _ in range(15):
        job_id = server.run_job("sh", "-c", "exit 0")
        reply = server.request("PUT", f"/jobs/{job_id}/kill")
        assert reply.status in (200, 409), reply.body
        final = server.wait_final(job_id)
        if reply.status == 200:
            assert reply.json()["status"] == "killed" == final["status"]
        else:
            assert final["status"] == "completed"
            assert "not running" in reply.json()["error"]


def test_unknown_job_is_not_found(server: Server) -> None:
    for method, path in [
        ("GET", "/jobs/999999/status"),
        ("GET", "/jobs/999999/out"),
        ("PUT", "/jobs/999999/kill"),
    ]:
        reply = server.request(method, path)
        assert reply.status == 404
        assert reply.json() == {"error": "job 999999 not found"}


def test_other_users_job_looks_like_a_missing_one(server: Server) -> None:
    job_id = server.run_job("sleep", "30")
    missing = server.request("GET", "/jobs/999998/status", user="bob").json()["error"]
    for method, path in [
        ("GET", f"/jobs/{job_id}/status"),
        ("GET", f"/jobs/{job_id}/out"),
        ("PUT", f"/jobs/{job_id}/kill"),
    ]:
        reply = server.request(method, path, user="bob")
        assert reply.status == 404
        assert reply.json()["error"] == missing.replace("999998", str(job_id))
    assert server.status(job_id)["status"] == "running"  # bob's kill did nothing
    assert server.request("PUT", f"/jobs/{job_id}/kill").status == 200


def test_missing_or_wrong_credentials_are_401(server: Server) -> None:
    assert server.request("GET", "/jobs/1/status", user=None).status == 401
    wrong = server.request(
        "GET", "/jobs/1/status", user=None, headers={"Authorization": "Basic YWxpY2U6bm9wZQ=="}
    )  # alice:nope
    assert wrong.status == 401
    assert wrong.json() == {"error": "invalid username or password"}
    assert wrong.headers.get("WWW-Authenticate") == 'Basic realm="worker"'


def test_bad_bodies_are_400_and_nothing_is_lost(server: Server) -> None:
    job_id = server.run_job("echo", "kept")
    for body in [
        b"not json",
        b"[]",
        b'"echo"',
        b"{}",
        b'{"command": ""}',
        b'{"command": 1}',
        b'{"command": "echo", "args": "x"}',
        b'{"command": "ec\\u0000ho"}',
        b"\xff\xfe",
    ]:
        reply = server.request("POST", "/jobs/run", raw_body=body)
        assert reply.status == 400, (body, reply.body)
        assert set(reply.json()) == {"error"}
    assert server.request("GET", "/jobs/1abc/status").status == 400
    assert server.request("GET", "/jobs/abc/status").status == 404  # a name of no job
    assert server.request("GET", "/nope").status == 404
    assert server.request("DELETE", "/jobs/1/kill").status == 405
    assert server.output(job_id) == "kept\n"


def test_twenty_jobs_run_concurrently(fresh_server: Server) -> None:
    started = time.monotonic()
    ids = [fresh_server.run_job("sleep", "2") for _ in range(20)]
    for job_id in ids:
        assert fresh_server.wait_final(job_id, timeout=30)["status"] == "completed"
    # Run one after another they would take 40 s.
    assert time.monotonic() - started < 15


def test_jobs_start_with_default_signal_dispositions(server: Server) -> None:
    # The server ignores or handles signals for itself; ignored ones would be
    # inherited across exec, so a job would not die of Ctrl-C or SIGPIPE.
    job_id = server.run_job("grep", "SigIgn", "/proc/self/status")
    server.wait_final(job_id)
    ignored = int(server.output(job_id).split()[1], 16)
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGTERM):
        assert not ignored & (1 << (signum - 1)), signum


def test_health_needs_no_credentials_and_says_ok(server: Server) -> None:
    reply = server.request("GET", "/health", user=None)
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    done = server.cli("health")
    assert (done.returncode, done.stdout) == (0, b"ok\n"), done.stderr
