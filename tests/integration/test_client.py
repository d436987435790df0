"""The Python client (``worker.client.Client``) against a real server: every
method, typed results, and the CLI's own errors and messages."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from tests.integration.conftest import USERS, Server, start_server, stop_server
from worker.client import ApiError, Client, ConnectionFailed, Job, JobStatus, Limits, Output

Made = list[tuple[str, str, int]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default rate limit (the client spaces its requests by it), and a
    quota of three running jobs."""
    flags = ("--kill-grace", "1", "--max-running-per-user", "3")
    instance = start_server(tmp_path_factory.mktemp("client"), *flags)
    yield instance
    stop_server(instance.process)


@pytest.fixture(scope="module")
def made() -> Made:
    return []


@pytest.fixture(scope="module")
def client(server: Server, made: Made) -> Iterator[Client]:
    """One client, as a program would keep it, that notes every request it
    makes: (method, path, status). Other parties here are other users, so
    its spacing is the only one that counts."""
    with server.client(trace=lambda *request: made.append(request)) as instance:
        yield instance


@pytest.fixture(autouse=True)
def _no_429(made: Made) -> Iterator[None]:
    del made[:]
    yield
    assert all(status != 429 for _, _, status in made), made  # spaced as the server asks


def test_run_status_wait_give_typed_jobs(client: Client) -> None:
    job_id = client.run("sh", "-c", "echo hi; exit 3", name="typed", env={"A": "1"})
    assert isinstance(job_id, int)
    ended = client.wait("typed")  # a name works as an ID does
    assert isinstance(ended, Job) and ended.id == job_id
    assert (ended.status, ended.exit_code, ended.signal) == (JobStatus.FAILED, 3, None)
    assert ended.status == "failed" and ended.is_final and ended.exit_status == 3
    assert (ended.command, ended.args, ended.name) == ("sh", ("-c", "echo hi; exit 3"), "typed")
    assert isinstance(ended.started_at, datetime.datetime)
    assert ended.started_at.tzinfo is not None
    assert ended.ended_at is not None and ended.ended_at >= ended.started_at
    assert client.status(job_id) == ended  # ``raw`` is not compared
    assert ended.raw["id"] == job_id


def test_limits_and_usage_are_typed(client: Client) -> None:
    job_id = client.run("true", limits=Limits(pids=64))
    job = client.wait(job_id)
    assert job.limits is not None and job.limits.pids == 64
    assert job.usage is None or job.usage.pids_peak is None or job.usage.pids_peak >= 1


def test_follow_yields_bytes_as_they_come(server: Server, client: Client) -> None:
    go = server.home() / "go"  # the job's working directory
    job_id = client.run("sh", "-c", "echo first; until [ -e go ]; do sleep 0.02; done; echo second")
    with client.follow(job_id) as follow:
        assert follow.job is not None and follow.job.id == job_id
        pieces = iter(follow)
        seen = b""
        while seen != b"first\n":  # before the job has been told to go on
            seen += next(pieces)
        go.write_bytes(b"")
        rest = b"".join(pieces)
        assert isinstance(rest, bytes) and rest == b"second\n"
        final = follow.final()
    go.unlink()
    assert (final.id, final.status, final.exit_code) == (job_id, JobStatus.COMPLETED, 0)
    # The connection goes on after the follow.
    assert client.status(job_id).status is JobStatus.COMPLETED


def test_run_and_follow_and_a_follow_let_go_early(client: Client) -> None:
    with client.run_and_follow("sh", "-c", "echo one; exit 4") as follow:
        assert follow.read() == b"one\n"
        assert follow.final().exit_code == 4
    job_id = client.run("sh", "-c", "echo started; sleep 60")
    with client.follow(job_id) as follow:
        assert next(iter(follow)) == b"started\n"
    # Let go mid-stream: the next request is not confused by its bytes.
    assert client.kill(job_id, force=True).status is JobStatus.KILLED


def test_out_pages_and_raw_output(client: Client) -> None:
    job_id = client.run("printf", "abc\\377def\\nlast\\n")
    client.wait(job_id)
    page = client.out(job_id)
    assert isinstance(page, Output)
    assert (page.output, page.size, page.complete) == ("abc\ufffddef\nlast\n", 13, True)
    first = client.out(job_id, limit=4)
    assert (first.output, first.next_offset, first.complete) == ("abc\ufffd", 4, False)
    assert "".join(p.output for p in client.pages(job_id)) == page.output
    assert client.out(job_id, tail=1).output == "last\n"
    raw = client.output(job_id)
    assert raw.data == b"abc\xffdef\nlast\n" and raw.truncated_bytes == 0
    assert raw.job is not None and raw.job.exit_code == 0
    assert client.output(job_id, tail=1).data == b"last\n"


def test_kill_and_signals(client: Client) -> None:
    job_id = client.run("sleep", "60")
    told: list[float | None] = []
    killed = client.kill(job_id, on_progress=told.append)
    assert (killed.id, killed.status, killed.sent) == (job_id, JobStatus.KILLED, None)
    with pytest.raises(ApiError) as ended:
        client.kill(job_id)
    assert ended.value.http_status == 409
    assert ended.value.message == f"job {job_id} is not running (status: killed)"
    hup = client.run("sleep", "60")
    assert client.kill(hup, signal="HUP").sent == "SIGHUP"
    job = client.wait(hup)
    assert (job.status, job.reason, job.signal) == (JobStatus.KILLED, "signal", 1)
    assert job.exit_status == 129


def test_errors_are_the_clis(server: Server, client: Client) -> None:
    with pytest.raises(ApiError) as unknown:
        client.status(424242)
    assert (unknown.value.http_status, unknown.value.message) == (404, "job 424242 not found")
    shown = server.cli("status", "424242", user="bob")
    assert shown.returncode == 1
    assert shown.stderr.decode().strip() == f"Error: {unknown.value.message}"
    with (
        pytest.raises(ApiError) as refused,
        Client(server.url, user="mallory", password="no", ca=server.ca) as bad,
    ):
        bad.status(1)
    assert refused.value.http_status == 401
    unreachable = Client("https://127.0.0.1:1", user="alice", password=USERS["alice"], ca=server.ca)
    with pytest.raises(ConnectionFailed, match="connection refused"):
        unreachable.status(1)


def test_a_quota_429_is_said_at_once(client: Client, made: Made) -> None:
    running = [client.run("sleep", "60") for _ in range(3)]
    try:
        del made[:]
        with pytest.raises(ApiError) as quota:
            client.run("true")
        assert quota.value.http_status == 429
        assert "running" in quota.value.message
        assert [status for _, _, status in made] == [429]  # not retried
        del made[:]  # the 429 the test asked for
    finally:
        for job_id in running:
            client.kill(job_id, force=True)


def test_send_with_eof(client: Client) -> None:
    job_id = client.run("cat")
    assert client.send(job_id, "hello ").accepted == 6
    sent = client.send(job_id, b"w\xc3\xb6rld", eof=True)
    assert (sent.id, sent.accepted, sent.closed) == (job_id, 6, True)
    assert client.wait(job_id).exit_code == 0
    assert client.output(job_id).data == "hello wörld".encode()


def test_list_pages_across_a_cursor(client: Client) -> None:
    ours = [client.run("true") for _ in range(3)]
    first = client.list(limit=2)
    assert [job.id for job in first.jobs] == ours[::-1][:2]
    assert first.next_cursor is not None
    second = client.list(limit=2, cursor=first.next_cursor)
    assert second.jobs[0].id == ours[0]
    every = [job.id for job in client.jobs(page_size=2)]
    assert every == sorted(every, reverse=True) and every[:3] == ours[::-1]
    running = client.run("sleep", "60")
    try:
        assert [job.id for job in client.list(status="running").jobs] == [running]
    finally:
        client.kill(running, force=True)


def test_remove_and_prune(client: Client) -> None:
    running = client.run("sleep", "60")
    with pytest.raises(ApiError) as refused:
        client.remove(running)
    assert refused.value.http_status == 409
    client.kill(running, force=True)
    assert client.remove(running) == running
    with pytest.raises(ApiError, match=f"job {running} not found"):
        client.status(running)
    ended = client.run("true")
    client.wait(ended)
    assert ended in client.prune()
    assert client.list().jobs == ()


def test_from_environment_finds_the_server_as_the_cli_does(server: Server) -> None:
    environ = {
        "WORKER_URL": server.url,
        "WORKER_USER": "bob",
        "WORKER_PASSWORD": USERS["bob"],
        "XDG_CONFIG_HOME": server.cli_env()["XDG_CONFIG_HOME"],
    }
    with Client.from_environment(environ) as client:
        assert client.config.user == "bob"
        assert client.health()
