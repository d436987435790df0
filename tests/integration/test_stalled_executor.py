"""A stalled executor: the API says so in time, and what it gave up on never
happens later; a retry with the same Idempotency-Key starts one job only."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.slow

TIMEOUT = 2  # seconds the API waits for the executor (--executor-timeout)
RUN = {"command": "echo", "args": ["once"]}


@pytest.fixture
def stallable(tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        tmp_path, "--rate-limit-ms", "0", "--executor-timeout", str(TIMEOUT), "--kill-grace", "1"
    )
    yield server
    with contextlib.suppress(psutil.Error):
        psutil.Process(server.executor_pid).resume()
    stop_server(server.process)


@contextlib.contextmanager
def stopped(server: Server) -> Iterator[None]:
    executor = psutil.Process(server.executor_pid)
    executor.suspend()  # SIGSTOP
    try:
        yield
    finally:
        executor.resume()


def jobs(server: Server) -> list[dict[str, object]]:
    return list(server.request("GET", "/jobs").json()["jobs"])


def test_a_run_the_api_gave_up_on_never_starts_later(stallable: Server) -> None:
    with stopped(stallable):
        reply = stallable.request("POST", "/jobs/run", RUN, headers={"Idempotency-Key": "k1"})
        assert reply.status == 503
        assert reply.json()["error"] == (
            f"the executor did not answer within {TIMEOUT} s; the job was not started"
        )
        assert reply.headers["Retry-After"] == "1"
    # Once the executor answers again it has seen the stale request (it is
    # read before this one) and refused it: nothing ran.
    assert stallable.request("GET", "/health", user=None).status == 200
    assert jobs(stallable) == []
    # The retry with the same key starts the job: once.
    first = stallable.request("POST", "/jobs/run", RUN, headers={"Idempotency-Key": "k1"})
    assert first.status == 201
    again = stallable.request("POST", "/jobs/run", RUN, headers={"Idempotency-Key": "k1"})
    assert (again.status, again.json()) == (200, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    other = {"command": "echo", "args": ["twice"]}
    clash = stallable.request("POST", "/jobs/run", other, headers={"Idempotency-Key": "k1"})
    assert clash.status == 409 and "different request" in clash.json()["error"]
    assert [job["id"] for job in jobs(stallable)] == [first.json()["id"]]
    # Other users' keys are their own.
    bobs = stallable.request(
        "POST", "/jobs/run", RUN, user="bob", headers={"Idempotency-Key": "k1"}
    )
    assert bobs.status == 201


def test_the_cli_retries_a_run_with_its_key_and_starts_one_job(stallable: Server) -> None:
    cli: subprocess.Popen[bytes] | None = None
    with stopped(stallable):
        cli = subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "echo", "once"],
            env=stallable.cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # A request sent after the CLI's has timed out when this one has:
        # by then the CLI met its first 503 and is retrying with its key.
        late = threading.Thread(
            target=lambda: stallable.request("GET", "/jobs/1/status"), daemon=True
        )
        late.start()
        late.join(TIMEOUT * 5)
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    # Its first attempt really was given up on (and refused later) ...
    assert "refused a RunJob request" in stallable.stderr_path.read_text()
    # ... and its retries, with the same key, started the job once.
    listed = jobs(stallable)
    assert [(job["command"], job["args"]) for job in listed] == [("echo", ["once"])]
    assert int(out) == listed[0]["id"]


def test_a_stopped_executor_is_not_mistaken_for_a_dead_one(stallable: Server) -> None:
    with stopped(stallable):
        reply = stallable.request("GET", "/health", user=None)
        assert reply.status == 503
        assert "did not answer" in reply.json()["error"]
    assert stallable.request("GET", "/health", user=None).status == 200
    assert stallable.process.poll() is None
    assert stallable.wait_final(stallable.run_job("true"))["status"] == "completed"
