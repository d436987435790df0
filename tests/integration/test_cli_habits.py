"""Habits people bring from docker, pueue and friends: wait, names, tail,
-e KEY, --cwd ., JSON everywhere."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.mockenv import MockEnvironment, run
from tests.integration.conftest import USERS, Server


def cli(
    server: Server, *argv: str, user: str = "alice", **options: Any
) -> tuple[int, MockEnvironment]:
    environ = {
        "WORKER_URL": server.url,
        "WORKER_USER": user,
        "WORKER_PASSWORD": USERS[user],
        **options.pop("environ", {}),
    }
    return run(*argv, environ=environ, **{"terminal": False, **options})


def lines(env: MockEnvironment) -> list[Any]:
    return [json.loads(line) for line in env.out.splitlines()]


def test_wait_exits_with_the_jobs_code(server: Server) -> None:
    ok = server.run_job("true")
    bad = server.run_job("sh", "-c", "sleep 0.2; exit 7")
    killed = server.run_job("sleep", "60")
    server.request("PUT", f"/jobs/{killed}/kill")
    status, env = cli(server, "wait", str(ok), str(bad), str(killed))
    assert status == 7  # the first that is not 0
    assert env.out == "0\n7\n143\n"
    assert cli(server, "wait", str(ok))[0] == 0
    status, env = cli(server, "wait", "--json", str(bad))
    assert status == 7
    (job,) = lines(env)
    assert (job["id"], job["status"], job["exit_code"]) == (bad, "failed", 7)


def test_a_name_is_the_callers_newest_job_of_that_name(server: Server) -> None:
    assert cli(server, "run", "--name", "twice", "echo", "first")[0] == 0
    status, env = cli(server, "run", "--name", "twice", "sh", "-c", "read x; echo got $x")
    newest = int(env.out)
    assert cli(server, "send", "twice", "it")[0] == 0
    assert cli(server, "wait", "twice")[0] == 0
    assert cli(server, "out", "twice")[1].out == "got it\n"
    status, env = cli(server, "status", "--json", "twice")
    assert (json.loads(env.out)["id"], json.loads(env.out)["name"]) == (newest, "twice")
    status, env = cli(server, "status", "twice", user="bob")  # alice's name means nothing to bob
    assert status == 1
    assert "no job named 'twice'" in env.err


def test_env_key_alone_passes_the_callers_value(server: Server) -> None:
    status, env = cli(
        server,
        "run",
        "-w",
        "-e",
        "FROM_ME",
        "-e",
        "UNSET_HERE",
        "-e",
        "GIVEN=x",
        "sh",
        "-c",
        'echo "$FROM_ME|${UNSET_HERE-unset}|$GIVEN"',
        environ={"FROM_ME": "mine"},
    )
    assert (status, env.out) == (0, "mine|unset|x\n")


def test_cwd_dot_is_the_callers_directory(server: Server) -> None:
    place = server.home() / "here"
    place.mkdir(exist_ok=True)
    place.chmod(0o755)
    status, env = cli(server, "run", "-w", "--cwd", ".", "pwd", cwd=str(place))
    assert (status, env.out) == (0, f"{place}\n")
    status, env = cli(server, "run", "-w", "--cwd", "..", "pwd", cwd=str(place))
    assert (status, env.out) == (0, f"{place.parent}\n")


def test_out_tail_then_follow(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "seq 1 5; sleep 0.3; echo 6")
    status, env = cli(server, "out", "--tail", "2", "-f", str(job_id))
    assert (status, env.out) == (0, "4\n5\n6\n")
    assert cli(server, "logs", "-n", "1", str(job_id))[1].out == "6\n"
    assert cli(server, "out", "-n", "0", str(job_id))[1].out == ""
    assert cli(server, "out", "-n", "99", str(job_id))[1].out == "1\n2\n3\n4\n5\n6\n"


def test_json_is_one_compact_document_per_reply_and_lines_for_streams(server: Server) -> None:
    status, env = cli(server, "--json", "run", "-w", "sh", "-c", "printf 'a\\nb'; exit 2")
    assert status == 2
    first, *output, last = lines(env)
    # Its status as the reply began: it may have ended by then already.
    assert first["status"] in ("running", "failed") and "id" in first
    assert "".join(line["output"] for line in output) == "a\nb"
    assert (last["id"], last["status"], last["exit_code"]) == (first["id"], "failed", 2)
    assert all(" " not in line.split('"')[0] for line in env.out.splitlines())  # compact
    status, env = cli(server, "--json", "out", "-f", str(first["id"]))
    assert [doc.get("output") for doc in lines(env)] == [None, "a\nb", None]
    status, env = cli(server, "--json", "kill", str(first["id"]))
    assert status == 1
    assert lines(env) == [{"error": f"job {first['id']} is not running (status: failed)"}]
    assert env.err == ""
    status, env = cli(server, "--json", "status", "424242")
    assert (status, lines(env)) == (1, [{"error": "job 424242 not found"}])


def test_a_follow_ends_with_a_trailer_and_the_connection_goes_on(server: Server) -> None:
    from worker.cli.main import client_config
    from worker.cli.parser import parse
    from worker.client.transport import ApiClient

    environ = {"WORKER_URL": server.url, "WORKER_USER": "alice", "WORKER_PASSWORD": "wonderland"}
    client = ApiClient(client_config(parse(["status", "1"]), environ))
    try:
        body = {"command": "sh", "args": ["-c", "echo ünï; exit 6"]}
        stream = client.stream("POST", "/jobs/run?follow=true", body)
        assert stream.status == 201
        job_id = int(stream.headers.value("x-job-id"))
        assert json.loads(stream.headers.value("x-job"))["args"] == body["args"]
        assert b"".join(stream) == "ünï\n".encode()
        final = json.loads(stream.trailers.value("x-job"))
        assert (final["id"], final["status"], final["exit_code"]) == (job_id, "failed", 6)
        # The same connection serves the next request.
        assert client.request("GET", f"/jobs/{job_id}/status").json()["exit_code"] == 6
    finally:
        client.close()
