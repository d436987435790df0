"""Processes of a job do not outlive its kill, nor the server; nothing turns zombie."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.helpers import alive, until, wait_gone
from tests.integration.conftest import JOB_PYTHON, Server, host_pid, start_server, stop_server

# A job that daemonizes the classic way: fork, setsid, fork again, and the
# daemon ignores SIGTERM. It prints the daemon's PID.
DAEMONIZE = """
import os, signal
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        while True:
            signal.pause()  # until its SIGKILL
    os._exit(0)
signal.pause()  # until the kill
"""


def pid_from_output(server: Server, job_id: int) -> int:
    """The host PID of the process whose PID the job printed (in the job's
    own PID namespace, where it has one)."""
    deadline = time.monotonic() + 10
    while not server.output(job_id).strip():
        assert time.monotonic() < deadline, "the job never printed a PID"
        time.sleep(0.05)
    return host_pid(server, job_id, int(server.output(job_id).split()[0]))


TRACKING = {
    "cgroups": [],
    "namespaces": ["--no-cgroups"],
    # As in a container, whose cgroup tree is read-only: sessions and descent.
    "trees": ["--no-cgroups", "--no-namespaces"],
}


@pytest.fixture(params=list(TRACKING), scope="module")
def tracked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server per way of tracking a job's processes."""
    extra = TRACKING[request.param]
    server = start_server(
        tmp_path_factory.mktemp(request.param), "--kill-grace", "1", "--rate-limit-ms", "0", *extra
    )
    yield server
    stop_server(server.process)


def test_kill_reaches_a_double_forked_setsid_daemon(tracked: Server) -> None:
    job_id = tracked.run_job(JOB_PYTHON, "-c", DAEMONIZE)
    daemon = pid_from_output(tracked, job_id)
    leader = tracked.status(job_id)["pid"]
    assert psutil.Process(daemon).ppid() != leader
    assert psutil.Process(daemon).pid not in {
        c.pid for c in psutil.Process(leader).children(recursive=True)
    }
    reply = tracked.request("PUT", f"/jobs/{job_id}/kill")
    assert reply.json() == {"id": job_id, "status": "killed"}
    assert not alive(daemon)  # gone by the time the kill is answered
    assert not alive(leader)


def test_kill_reaches_an_orphan_that_ignores_term(tracked: Server) -> None:
    # The middle shell exits at once, so the TERM-ignoring sleep is orphaned
    # but stays in the job's session.
    job_id = tracked.run_job(
        "sh", "-c", "sh -c '(trap \"\" TERM; exec sleep 4321) & echo $!'; exec sleep 1234"
    )
    orphan = pid_from_output(tracked, job_id)
    assert tracked.request("PUT", f"/jobs/{job_id}/kill").status == 200
    assert not alive(orphan)


def test_term_ignoring_job_is_gone_within_the_grace_period(tracked: Server) -> None:
    job_id = tracked.run_job("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
    until(lambda: tracked.output(job_id) == "ready\n")
    started = time.monotonic()
    reply = tracked.request("PUT", f"/jobs/{job_id}/kill")
    took = time.monotonic() - started
    assert reply.json()["status"] == "killed"
    assert tracked.status(job_id)["signal"] == signal.SIGKILL
    # It waited out the 1 s grace; the deadline is generous (a slow host).
    assert 1.0 <= took < 15.0


def test_no_zombies_after_many_short_and_double_forking_jobs(tracked: Server) -> None:
    ids = [tracked.run_job("true") for _ in range(100)]
    ids += [tracked.run_job("sh", "-c", "(sleep 0.2 &) ; (setsid sleep 0.2 &)") for _ in range(10)]
    for job_id in ids:
        tracked.wait_final(job_id)
    serve = psutil.Process(tracked.process.pid)
    deadline = time.monotonic() + 15
    while True:
        zombies = [p for p in serve.children(recursive=True) if _status(p) == psutil.STATUS_ZOMBIE]
        if not zombies or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert zombies == []


def start_together(server: Server, count: int, command: str, *args: str) -> list[int]:
    """``count`` jobs started by 16 clients at once; their IDs."""

    def run(_: int) -> int:
        reply = server.request("POST", "/jobs/run", {"command": command, "args": list(args)})
        assert reply.status == 201, reply.body
        return int(reply.json()["id"])

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(run, range(count)))


def test_jobs_that_end_at_once_all_start_while_many_start_together(tracked: Server) -> None:
    # A job can end, and be reaped as the executor reaps every child, before
    # its launch has finished; it must still be a job that ran, not one that
    # "could not start".
    ids = start_together(tracked, 320, "true")
    ends = [tracked.wait_final(job_id) for job_id in ids]
    failed = [(end["id"], end.get("error")) for end in ends if end["status"] != "completed"]
    assert failed == []
    assert all(end["exit_code"] == 0 for end in ends)


def test_what_jobs_that_end_at_once_leave_behind_is_stopped(tracked: Server) -> None:
    # Each job's shell exits at once, maybe before its launch is through,
    # leaving a sleep behind; a duration of its own tells this test's apart.
    duration = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"

    def left() -> list[int]:
        return [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] == ["sleep", duration]
        ]

    ids = start_together(tracked, 48, "sh", "-c", f"sleep {duration} & exit 0")
    assert [tracked.wait_final(job_id)["status"] for job_id in ids] == ["completed"] * len(ids)
    # TERM, the 1 s grace period, then KILL, for each job's leftover.
    until(lambda: not left(), timeout=30)


def _status(process: psutil.Process) -> str:
    try:
        return str(process.status())
    except psutil.NoSuchProcess:
        return "gone"


def test_executor_death_kills_its_jobs_and_the_api_says_503(tmp_path: Path) -> None:
    # Without PID namespaces: the stubborn job outlives its executor (in a
    # namespace the kernel would kill it with its init at once), so the
    # supervisor's clean-up takes the grace period, and the API answers
    # meanwhile.
    server = start_server(tmp_path, "--kill-grace", "2", "--rate-limit-ms", "0", "--no-namespaces")
    try:
        stubborn = server.run_job("sh", "-c", "trap '' TERM; echo ready; sleep 300")
        until(lambda: server.output(stubborn) == "ready\n")
        jobs = [server.status(stubborn)["pid"]]
        jobs += [server.status(server.run_job("sleep", "300"))["pid"] for _ in range(3)]
        psutil.Process(server.executor_pid).send_signal(signal.SIGKILL)
        # While the supervisor cleans up (the stubborn job takes the grace
        # period), the API explains instead of failing.
        reply = server.request("GET", f"/jobs/{stubborn}/status")
        assert reply.status == 503
        assert "executor" in reply.json()["error"]
        health = server.request("GET", "/health", user=None)
        assert health.status == 503
        assert "executor" in health.json()["error"]
        assert server.process.wait(30) == 1
        assert wait_gone([*jobs, server.api_pid]) == []
        assert "executor process exited unexpectedly" in server.stderr_path.read_text()
    finally:
        stop_server(server.process)


def test_api_death_takes_the_executor_and_its_jobs(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        jobs = [server.status(server.run_job("sleep", "300"))["pid"] for _ in range(3)]
        psutil.Process(server.api_pid).send_signal(signal.SIGKILL)
        assert server.process.wait(30) == 1
        assert wait_gone([*jobs, server.executor_pid]) == []
    finally:
        stop_server(server.process)


def test_processes_an_ended_job_left_behind_are_stopped(tracked: Server) -> None:
    # A classic daemon: the job's main process exits (once told to), leaving
    # a TERM-ignoring process in a new session behind.
    job_id = tracked.run_job(
        "sh", "-c", "setsid sh -c 'trap \"\" TERM; sleep 300' & echo $!; read x; exit 0"
    )
    daemon = pid_from_output(tracked, job_id)
    eof = tracked.request("POST", f"/jobs/{job_id}/stdin?eof=true", raw_body=b"")
    assert eof.status == 200
    assert tracked.wait_final(job_id)["status"] == "completed"
    # TERM, the 1 s grace period, then KILL: gone, without any kill request.
    assert wait_gone([daemon], timeout=10) == []
    kill = tracked.request("PUT", f"/jobs/{job_id}/kill")
    assert kill.status == 409


def test_a_job_that_forks_and_exits_is_followed_to_its_end(tmp_path: Path) -> None:
    # A leftover that ignores SIGTERM holds the output pipe open until its
    # SIGKILL, 30 s after the main process ended: a follow that waited for
    # EOF would take that long. It must end with the job instead.
    server = start_server(tmp_path, "--kill-grace", "30", "--rate-limit-ms", "0")
    try:
        job_id = server.run_job("sh", "-c", "(trap '' TERM; exec sleep 60) & echo early")
        assert server.wait_final(job_id)["status"] == "completed"
        follow = ThreadPoolExecutor(1).submit(
            server.request, "GET", f"/jobs/{job_id}/out?follow=true"
        )
        reply = follow.result(timeout=15)  # far less than the 30 s to the SIGKILL
        assert reply.body == b"early\n"
    finally:
        # Not the 30 s grace of a clean stop: the whole server at once (the
        # process group this test made); its jobs go with its executor.
        os.killpg(server.process.pid, signal.SIGKILL)
        stop_server(server.process)
        assert wait_gone([server.api_pid, server.executor_pid]) == []


def test_losing_the_supervisor_takes_everything_down(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    try:
        job_pid = server.status(server.run_job("sleep", "300"))["pid"]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        assert wait_gone([server.api_pid, server.executor_pid, job_pid]) == []
    finally:
        stop_server(server.process)


def test_a_server_run_inside_a_job_never_counts_its_spawner_in_that_job(tmp_path: Path) -> None:
    # A server started from inside a job inherits that job's WORKER_JOB_ID,
    # and so does its spawner, a child of its executor as the orphans of its
    # jobs are. Killing its own job 1 must not kill the spawner with it.
    server = start_server(
        tmp_path,
        *("--kill-grace", "1", "--rate-limit-ms", "0", "--no-cgroups", "--no-namespaces"),
        env={**os.environ, "WORKER_JOB_ID": "1"},
    )
    try:
        job_id = server.run_job("sleep", "300")
        assert job_id == 1
        assert server.request("PUT", f"/jobs/{job_id}/kill").json()["status"] == "killed"
        after = server.run_job("true")
        assert server.wait_final(after)["status"] == "completed"
    finally:
        stop_server(server.process)
