"""Each CLI action makes as few requests as it can, and with the default
rate limit (100 ms) none meets a 429 on an idle server: the follow reply
carries the job's status in a header and its end in a trailer, and the CLI
spaces its own requests by what the server tells it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli.mockenv import MockEnvironment, run
from tests.integration.conftest import USERS, Server, start_server, stop_server

TRACE = re.compile(r"worker: (\w+) (\S+) -> (\d+)")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default rate limit; a long grace period, so a kill that waits it
    out would show."""
    server = start_server(tmp_path_factory.mktemp("limited"), "--kill-grace", "30")
    yield server
    stop_server(server.process)


def cli(server: Server, *argv: str, **options: Any) -> tuple[int, MockEnvironment, list[str]]:
    """Exit status, environment, and the requests made, as ``METHOD STATUS``."""
    environ = {
        "WORKER_URL": server.url,
        "WORKER_USER": "alice",
        "WORKER_PASSWORD": USERS["alice"],
        "WORKER_DEBUG": "1",
    }
    status, env = run(*argv, environ=environ, **options)
    made = [f"{m[1]} {m[3]}" for m in TRACE.finditer(env.err)]
    settle()
    return status, env, made


def settle() -> None:
    """Let the last request's spacing pass: each action starts on an idle server."""
    time.sleep(0.15)


def api(server: Server, method: str, path: str, body: Any = None) -> Any:
    """A request of the test's own, which waits out the rate limit."""
    while (reply := server.request(method, path, body)).status == 429:
        time.sleep(reply.json()["retry_after_ms"] / 1000)
    assert reply.status < 300, reply.body
    settle()
    return reply.json()


def start(server: Server, *argv: str) -> int:
    return int(api(server, "POST", "/jobs/run", {"command": argv[0], "args": list(argv[1:])})["id"])


def wait_output(server: Server, job_id: int, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in api(server, "GET", f"/jobs/{job_id}/out")["output"]:
        assert time.monotonic() < deadline


def final(server: Server, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while (job := api(server, "GET", f"/jobs/{job_id}/status"))["status"] == "running":
        assert time.monotonic() < deadline
    return dict(job)


@pytest.mark.parametrize("terminal", [False, True])
def test_run_wait_is_one_request(limited: Server, terminal: bool) -> None:
    status, env, made = cli(limited, "run", "-w", "sh", "-c", "echo hi; exit 5", terminal=terminal)
    assert status == 5
    assert made == ["POST 201"]
    assert env.out.startswith("hi\n")


def test_a_run_wait_of_true_takes_no_rate_limit_wait(limited: Server) -> None:
    started = time.monotonic()
    status, _, made = cli(limited, "run", "-w", "true")
    assert (status, made) == (0, ["POST 201"])
    assert time.monotonic() - started < 5  # generous: no 429 round trips, nothing to wait for


@pytest.mark.parametrize("terminal", [False, True])
def test_out_and_out_follow_are_one_request(limited: Server, terminal: bool) -> None:
    job_id = start(limited, "echo", "hello")
    final(limited, job_id)
    for argv in (
        ["out", str(job_id)],
        ["out", "-f", str(job_id)],
        ["logs", "-n", "1", str(job_id)],
    ):
        status, env, made = cli(limited, *argv, terminal=terminal)
        assert (status, made) == (0, ["GET 200"]), env.err
        assert "hello" in env.out


def test_every_other_action_is_one_request(limited: Server) -> None:
    name = f"n{time.monotonic_ns()}"
    for argv, expected in [
        (["run", "--name", name, "sh", "-c", "read x; echo got $x"], "POST 201"),
        (["status", name], "GET 200"),
        (["send", name, "go"], "POST 200"),
        (["wait", name], "GET 200"),
        (["list", "--limit", "3"], "GET 200"),
        (["run", "sleep", "60"], "POST 201"),
    ]:
        status, env, made = cli(limited, *argv, terminal=False)
        assert (status, made) == (0, [expected]), (argv, env.err)
    job_id = int(env.out)
    status, env, made = cli(limited, "kill", "--force", str(job_id))
    assert (status, made) == (0, ["PUT 200"])


def test_an_action_of_several_requests_spaces_them_itself(limited: Server) -> None:
    jobs = [str(start(limited, "true")) for _ in range(3)]
    for job_id in jobs:
        final(limited, int(job_id))
    status, env, made = cli(limited, "wait", *jobs, terminal=False)
    assert status == 0
    assert made == ["GET 200"] * 3  # three requests, no 429 between them
    assert env.out == "0\n0\n0\n"


def test_force_kills_at_once_and_a_signal_goes_alone(limited: Server) -> None:
    script = "trap '' TERM; trap 'echo hup' HUP; echo ready; while :; do sleep 0.05; done"
    job_id = start(limited, "sh", "-c", script)
    wait_output(limited, job_id, "ready")
    status, env, _ = cli(limited, "kill", "-s", "HUP", str(job_id), terminal=False)
    assert (status, env.out) == (0, "running\n")
    wait_output(limited, job_id, "hup")
    assert api(limited, "GET", f"/jobs/{job_id}/status")["status"] == "running"  # not a kill
    started = time.monotonic()
    status, env, _ = cli(limited, "kill", "--force", str(job_id), terminal=False)
    assert (status, env.out) == (0, "killed\n")
    assert time.monotonic() - started < 10  # not the 30 s grace period
    job = final(limited, job_id)
    assert (job["status"], job["signal"], job["reason"]) == ("killed", 9, "kill")


def test_a_job_that_dies_of_the_signal_it_was_sent_was_killed(limited: Server) -> None:
    job_id = start(limited, "sleep", "60")
    assert cli(limited, "kill", "-s", "INT", str(job_id))[0] == 0
    job = final(limited, job_id)
    assert (job["status"], job["signal"], job["reason"]) == ("killed", 2, "signal")
