"""Authentication, authorization and the per-user rate limit on a real server."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, start_server, stop_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the default rate limit (100 ms)."""
    instance = start_server(tmp_path_factory.mktemp("limited"), "--kill-grace", "1")
    yield instance
    stop_server(instance.process)


def _basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic(b"alice:wrong"),
        _basic(b"mallory:wonderland"),
        _basic(b"alice:" + b"w" * 100),
        _basic(b"\xff\xfe:wonderland"),
        _basic(b"alice:\xff\xfe"),
        _basic(b"no-colon"),
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
    ],
    ids=[
        "none",
        "wrong",
        "unknown",
        "long",
        "user-not-utf8",
        "pw-not-utf8",
        "no-colon",
        "bad-base64",
        "bearer",
        "empty",
    ],
)
def test_bad_credentials_are_401_with_a_challenge(server: Server, headers: dict[str, str]) -> None:
    reply = server.request("GET", "/jobs/1/status", user=None, headers=headers)
    assert reply.status == 401, reply.body
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="worker"'
    assert set(reply.json()) == {"error"}


def test_unknown_user_and_wrong_password_get_the_same_answer(server: Server) -> None:
    unknown = server.request(
        "GET", "/jobs/1/status", user=None, headers=_basic(b"mallory:wonderland")
    )
    wrong = server.request("GET", "/jobs/1/status", user=None, headers=_basic(b"alice:nope"))
    assert (unknown.status, unknown.body) == (wrong.status, wrong.body)


def test_a_user_never_reaches_another_users_job(server: Server) -> None:
    job_id = server.run_job("sleep", "30", user="bob")
    for method, path in [
        ("GET", f"/jobs/{job_id}/status"),
        ("GET", f"/jobs/{job_id}/out"),
        ("GET", f"/jobs/{job_id}/out?format=raw"),
        ("PUT", f"/jobs/{job_id}/kill"),
    ]:
        theirs = server.request(method, path, user="alice")
        missing = server.request(method, path.replace(f"/{job_id}/", "/987654321/"), user="alice")
        assert theirs.status == missing.status == 404
        assert theirs.json()["error"] == f"job {job_id} not found"
        assert missing.json()["error"] == "job 987654321 not found"
    assert server.request("PUT", f"/jobs/{job_id}/kill", user="bob").status == 200


def test_requests_too_close_together_get_429(limited: Server) -> None:
    first = limited.request("GET", "/jobs/1/status")
    assert first.status in (200, 404)
    second = limited.request("GET", "/jobs/1/status")
    assert second.status == 429, second.body
    body = second.json()
    assert 0 < body["retry_after_ms"] <= 100
    assert "wait" in body["error"]
    assert int(second.headers["Retry-After"]) >= 1
    # Another user is not held up by alice's requests.
    assert limited.request("GET", "/jobs/1/status", user="bob").status in (200, 404)


def test_wrong_passwords_do_not_spend_the_users_allowance(limited: Server) -> None:
    deadline = time.monotonic() + 5
    while limited.request("GET", "/jobs/1/status", user="bob").status == 429:
        assert time.monotonic() < deadline
    for _ in range(3):
        wrong = limited.request("GET", "/jobs/1/status", user=None, headers=_basic(b"bob:x"))
        assert wrong.status == 401
    # Each refused check took a bcrypt round (far over 100 ms), so only a
    # limiter that counted the attacker's requests as bob's would say 429 now.
    assert limited.request("GET", "/jobs/1/status", user="bob").status in (200, 404)


def test_the_cli_waits_out_the_limit(limited: Server) -> None:
    script = "for i in 1 2 3; do worker run true || exit 1; done; worker status 1 >/dev/null"
    bin_dir = Path(sys.executable).parent  # where the installed `worker` script lives
    env = {
        **os.environ,
        "WORKER_URL": limited.url,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    assert (bin_dir / "worker").exists()
    result = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 3


def test_a_flood_of_bad_passwords_does_not_stall_other_users(server: Server) -> None:
    server.request("GET", "/jobs/1/status", user="bob")  # bob's credentials are now cached
    stop = threading.Event()
    answers: list[int] = []

    def flood() -> None:
        while not stop.is_set():
            reply = server.request(
                "GET", "/jobs/1/status", user=None, headers=_basic(b"alice:guess")
            )
            answers.append(reply.status)

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        worst = 0.0
        for _ in range(20):
            started = time.monotonic()
            assert server.request("GET", "/jobs/1/status", user="bob").status in (200, 404)
            worst = max(worst, time.monotonic() - started)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(answers) <= {401, 429}
    assert 401 in answers
    # bcrypt costs ~0.2 s a check and 8 clients keep it busy; had checks run
    # on the event loop, bob would wait for several of them each time.
    assert worst < 1.0, worst


def test_a_user_added_by_the_cli_can_log_in(tmp_path: Path) -> None:
    users = tmp_path / "users"
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "users",
            "add",
            "carol",
            "--users",
            str(users),
            "--password-stdin",
        ],
        input=b"tea-party\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    server = start_server(tmp_path, "--users", str(users), "--rate-limit-ms", "0")
    try:
        env = {
            **os.environ,
            "WORKER_URL": server.url,
            "WORKER_USER": "carol",
            "WORKER_PASSWORD": "tea-party",
        }
        ran = subprocess.run(
            [sys.executable, "-m", "worker", "run", "true"],
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        wrong = subprocess.run(
            [sys.executable, "-m", "worker", "run", "true"],
            env={**env, "WORKER_PASSWORD": "nope"},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert wrong.returncode == 1
        assert wrong.stderr.decode() == "Error: invalid username or password\n"
    finally:
        stop_server(server.process)
