"""Anything a client sends gets a clear JSON 4xx, and nothing is lost."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import CA, Reply, Server, start_server, stop_server

MAX_BODY = 4096


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int, str]]:
    """A server with a small body limit and a job whose output must survive."""
    server = start_server(
        tmp_path_factory.mktemp("bad-input"), "--rate-limit-ms", "0", "--max-body", str(MAX_BODY)
    )
    job_id = server.run_job("echo", "precious")
    server.wait_final(job_id)
    yield server, job_id, server.output(job_id)
    stop_server(server.process)


def _intact(server: Server, job_id: int, output: str) -> None:
    assert server.process.poll() is None, "the server died"
    assert server.output(job_id) == output
    assert server.status(job_id)["status"] == "completed"


def _is_clean_4xx(reply: Reply, *allowed: int) -> None:
    assert reply.status in allowed, (reply.status, reply.body[:200])
    body = reply.json()
    assert set(body) <= {"error", "retry_after_ms"}
    assert isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"] and "Traceback" not in body["error"]


BAD_BODIES = {
    "invalid json": b"{nope",
    "array": b'["echo"]',
    "string": b'"echo"',
    "number": b"42",
    "null": b"null",
    "missing command": b'{"args": []}',
    "command not a string": b'{"command": ["echo"]}',
    "args not a list": b'{"command": "echo", "args": "hi"}',
    "args with a number": b'{"command": "echo", "args": [1]}',
    "empty command": b'{"command": ""}',
    "NUL in command": b'{"command": "ec\\u0000ho"}',
    "NUL in args": b'{"command": "echo", "args": ["a\\u0000b"]}',
    "lone surrogate": b'{"command": "echo", "args": ["\\ud800"]}',
    "unknown field": b'{"command": "echo", "shell": true}',
    "non-UTF-8": b'{"command": "\xff\xfe"}',
    "deep nesting": b"[" * 3000,
    "empty body": b"",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_run_bodies_are_400(target: tuple[Server, int, str], body: bytes) -> None:
    server, job_id, output = target
    _is_clean_4xx(server.request("POST", "/jobs/run", raw_body=body), 400)
    _intact(server, job_id, output)


def test_too_many_or_too_long_args(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--max-body", str(8 << 20))
    try:
        many = server.request("POST", "/jobs/run", {"command": "true", "args": ["x"] * 5000})
        _is_clean_4xx(many, 400)
        long = server.request("POST", "/jobs/run", {"command": "true", "args": ["x" * 200_000]})
        _is_clean_4xx(long, 400)
    finally:
        stop_server(server.process)


def test_body_over_the_limit_is_413(target: tuple[Server, int, str]) -> None:
    server, job_id, output = target
    body = {"command": "echo", "args": ["x" * MAX_BODY]}
    reply = server.request("POST", "/jobs/run", body)
    _is_clean_4xx(reply, 413)
    assert str(MAX_BODY) in reply.json()["error"]
    _intact(server, job_id, output)


@pytest.mark.parametrize(
    ("raw_id", "status"),
    [
        ("abc", 404),  # a name, of no job
        ("1abc", 400),  # neither an ID nor a name
        ("-1", 400),
        ("1.5", 400),
        ("0x10", 400),
        ("%20", 400),
        ("0", 404),
        ("99999999999999999999999999999999", 404),
        ("9" * 5000, 404),
    ],
)
def test_bad_job_ids(target: tuple[Server, int, str], raw_id: str, status: int) -> None:
    server, job_id, output = target
    for method, action in [("GET", "status"), ("GET", "out"), ("PUT", "kill")]:
        _is_clean_4xx(server.request(method, f"/jobs/{raw_id}/{action}"), status, 414, 431)
    _intact(server, job_id, output)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/jobz", 404),
        ("GET", "/jobs/1", 405),  # DELETE only
        ("GET", "/jobs/1/x", 404),
        ("GET", "/jobs/1/status/extra", 404),
        ("POST", "/jobs/1/status", 405),
        ("GET", "/jobs/run", 405),
        ("DELETE", "/jobs/1/kill", 405),
        ("PATCH", "/jobs/run", 405),
        ("PUT", "/jobs", 405),
        ("DELETE", "/jobs", 400),  # ?finished=true is missing
        ("GET", "/jobs/1/stdin", 405),
    ],
)
def test_unknown_paths_and_wrong_methods(
    target: tuple[Server, int, str], method: str, path: str, status: int
) -> None:
    server, job_id, output = target
    _is_clean_4xx(server.request(method, path), status)
    _intact(server, job_id, output)


@pytest.mark.parametrize(
    "raw_request",
    [
        b"GET /jobs/\xff\xfe/status HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /jobs/1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xff\r\n\r\n",
        b"POST /jobs/run HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\xff\xfe\xfd\xfc\xfb",
        b"GARBAGE\r\n\r\n",
    ],
    ids=["path", "header", "body", "request line"],
)
def test_raw_non_utf8_bytes(target: tuple[Server, int, str], raw_request: bytes) -> None:
    server, job_id, output = target
    context = ssl.create_default_context(cafile=str(CA))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as tls,
    ):
        tls.sendall(raw_request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]
    _intact(server, job_id, output)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
run_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"command": st.one_of(st.text(max_size=20), json_values)},
        optional={"args": st.one_of(st.lists(st.text(max_size=20), max_size=5), json_values)},
    ).map(lambda v: json.dumps(v).encode()),
)
job_ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"),
        min_size=1,
        max_size=30,
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=run_bodies, raw_id=job_ids, action=st.sampled_from(["status", "out", "kill"]))
def test_generated_requests_never_break_the_server(
    target: tuple[Server, int, str], body: bytes, raw_id: str, action: str
) -> None:
    server, job_id, output = target
    run = server.request("POST", "/jobs/run", raw_body=body)
    if run.status == 201:
        # A valid body really started a job; stop it so nothing piles up.
        started = run.json()["id"]
        server.request("PUT", f"/jobs/{started}/kill")
    else:
        _is_clean_4xx(run, 400, 413)
    from urllib.parse import quote

    method = "PUT" if action == "kill" else "GET"
    reply = server.request(method, f"/jobs/{quote(raw_id, safe='')}/{action}")
    if reply.status >= 300:
        _is_clean_4xx(reply, 400, 404, 409, 414)
    _intact(server, job_id, output)
