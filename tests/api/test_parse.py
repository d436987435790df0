"""Checking what a client sent: job IDs in paths and the run request body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.api import parse
from worker.config import MAX_ARG_BYTES, MAX_ARGS
from worker.errors import BadRequest, JobNotFound
from worker.protocol import JobStatus

# --- job_id -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", 1), ("0", 0), ("42", 42), ("007", 7), ("9" * 18, 10**18 - 1)],
)
def test_job_id_accepts_ascii_digits(raw: str, expected: int) -> None:
    assert parse.job_id(raw) == expected


@pytest.mark.parametrize("raw", ["9" * 19, "1" + "0" * 30, "5" * 5000])
def test_job_id_too_large_is_not_found(raw: str) -> None:
    with pytest.raises(JobNotFound) as info:
        parse.job_id(raw)
    # The message quotes a bounded part of the value.
    assert len(info.value.message) < 100
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "-1",
        "abc",
        "1.5",
        "",
        " 1",
        "1 ",
        "1\n",
        "+1",
        "0x10",
        "1e3",
        "\u0661",
        "\u0661\u0662",
        "\u00b2",
        "\uff11",
    ],
)
def test_job_id_not_a_number_is_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse.job_id(raw)
    assert not isinstance(info.value, JobNotFound)
    assert "\n" not in info.value.message


def test_job_id_bad_request_quotes_long_value_briefly() -> None:
    with pytest.raises(BadRequest) as info:
        parse.job_id("x" * 10_000)
    assert len(info.value.message) < 120


# --- run_body ---------------------------------------------------------------


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body({"command": "ls", "args": ["-la", "/"]}), ("ls", ("-la", "/"))),
        (body({"command": "true"}), ("true", ())),
        (body({"command": "true", "args": []}), ("true", ())),
        (body({"args": ["x"], "command": "echo"}), ("echo", ("x",))),
        (
            body({"command": "echo", "args": ["", " ", "ünï", "$(rm -rf /)"]}),
            ("echo", ("", " ", "ünï", "$(rm -rf /)")),
        ),
        (b'  {"command": "echo"}  \n', ("echo", ())),
        ('{"command": "écho"}'.encode(), ("écho", ())),
    ],
)
def test_run_body_valid(raw: bytes, expected: tuple[str, tuple[str, ...]]) -> None:
    options = parse.run_body(raw)
    assert (options.command, options.args) == expected
    assert isinstance(options.args, tuple)
    assert (options.timeout, options.env, options.cwd) == (None, (), None)


def test_run_body_limits_are_inclusive() -> None:
    many = body({"command": "echo", "args": ["a"] * MAX_ARGS})
    assert len(parse.run_body(many).args) == MAX_ARGS
    longest = "a" * MAX_ARG_BYTES
    options = parse.run_body(body({"command": longest, "args": [longest]}))
    assert (options.command, options.args) == (longest, (longest,))


BAD_BODIES: dict[str, bytes] = {
    "empty": b"",
    "invalid-json": b'{"command": "ls",',
    "trailing-garbage": b'{"command": "ls"} x',
    "non-utf8": b'{"command": "\xff\xfe"}',
    "latin1": '{"command": "é"}'.encode("latin-1"),
    "array": body(["ls"]),
    "string": body("ls"),
    "number": body(1),
    "null": body(None),
    "missing-command": body({"args": ["x"]}),
    "empty-command": body({"command": ""}),
    "command-int": body({"command": 1}),
    "command-null": body({"command": None}),
    "command-list": body({"command": ["ls"]}),
    "args-string": body({"command": "ls", "args": "-la"}),
    "args-null": body({"command": "ls", "args": None}),
    "args-dict": body({"command": "ls", "args": {"a": "b"}}),
    "args-int-item": body({"command": "ls", "args": ["-l", 1]}),
    "args-null-item": body({"command": "ls", "args": [None]}),
    "args-nested": body({"command": "ls", "args": [["x"]]}),
    "nul-command": body({"command": "l\u0000s"}),
    "nul-arg": body({"command": "ls", "args": ["a", "b\u0000"]}),
    "surrogate-command": b'{"command": "\\ud800"}',
    "surrogate-arg": b'{"command": "echo", "args": ["ok", "x\\udfffy"]}',
    "too-many-args": body({"command": "echo", "args": ["a"] * (MAX_ARGS + 1)}),
    "too-long-arg": body({"command": "echo", "args": ["a" * (MAX_ARG_BYTES + 1)]}),
    "too-long-command": body({"command": "a" * (MAX_ARG_BYTES + 1)}),
    # Counted in UTF-8 bytes, not characters.
    "too-long-multibyte": body({"command": "echo", "args": ["é" * (MAX_ARG_BYTES // 2 + 1)]}),
    "unknown-field": body({"command": "ls", "shell": "/bin/sh"}),
    "unknown-field-only": body({"stdin": ""}),
    "unknown-field-newline": body({"command": "ls", "a\nb": 1}),
    "unknown-field-long": body({"command": "ls", "x" * 5000: 1}),
    "unknown-field-surrogate": b'{"command": "ls", "\\ud800": 1}',
}


@pytest.mark.parametrize("raw", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_run_body_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse.run_body(raw)
    message = info.value.message
    assert message
    assert "\n" not in message and "\r" not in message
    assert len(message) < 200
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (body(["ls"]), "JSON object"),
        (b"\xff", "JSON object"),
        (body({"args": []}), "'command'"),
        (body({"command": "ls", "args": [1]}), "'args'"),
        (body({"command": "ls", "args": ["\u0000"]}), "NUL"),
        (b'{"command": "\\ud800"}', "Unicode"),
        (body({"command": "ls", "args": ["a"] * (MAX_ARGS + 1)}), f"at most {MAX_ARGS}"),
        (body({"command": "a" * (MAX_ARG_BYTES + 1)}), str(MAX_ARG_BYTES)),
        (body({"command": "ls", "shell": "/"}), '"shell"'),
    ],
)
def test_run_body_messages_say_what_is_wrong(raw: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest, match=fragment):
        parse.run_body(raw)


def test_run_body_unknown_field_is_reported_before_other_problems() -> None:
    with pytest.raises(BadRequest, match='unknown field "zzz"'):
        parse.run_body(body({"zzz": 1, "command": 5}))


# Deep nesting makes json.loads raise RecursionError, not ValueError.
@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000], ids=["array", "object"])
def test_run_body_deeply_nested_json_is_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse.run_body(raw)


def test_run_options() -> None:
    options = parse.run_body(
        body({"command": "env", "timeout": 1.5, "env": {"A": "1", "B_2": ""}, "cwd": "/tmp"})
    )
    assert options.timeout == 1.5
    assert options.env == (("A", "1"), ("B_2", ""))
    assert options.cwd == "/tmp"
    assert parse.run_body(body({"command": "x", "timeout": 30})).timeout == 30.0


@pytest.mark.parametrize(
    "extra",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": "30s"},
        {"timeout": True},
        {"timeout": 1e12},
        {"env": ["A=1"]},
        {"env": {"A": 1}},
        {"env": {"": "x"}},
        {"env": {"A=B": "x"}},
        {"env": {"A": "x\u0000"}},
        {"cwd": ""},
        {"cwd": 5},
        {"cwd": "/tmp\u0000"},
    ],
)
def test_bad_run_options(extra: dict[str, object]) -> None:
    raw = json.dumps({"command": "true", **extra}).encode().replace(b"\\u0000", b"\\u0000")
    with pytest.raises(BadRequest) as caught:
        parse.run_body(raw)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("raw", "value"), [(None, False), ("true", True), ("1", True), ("no", False)]
)
def test_flag(raw: str | None, value: bool) -> None:
    assert parse.flag(raw, "follow") is value


@pytest.mark.parametrize("raw", ["maybe", "", "2"])
def test_bad_flag(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse.flag(raw, "follow")


def test_offset_and_status_filter() -> None:
    assert parse.offset(None) == 0
    assert parse.offset("42") == 42
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(BadRequest):
            parse.offset(bad)
    assert parse.status_filter("running") is JobStatus.RUNNING
    assert parse.status_filter(None) is None
    with pytest.raises(BadRequest, match="must be one of"):
        parse.status_filter("done")


def test_limit_cursor_and_idempotency_key() -> None:
    assert parse.limit(None, 100, 1000) == 100
    assert parse.limit("1", 100, 1000) == 1
    assert parse.limit("1000", 100, 1000) == 1000
    assert parse.cursor(None) is None
    assert parse.cursor("42") == 42
    assert parse.idempotency_key(None) is None
    assert parse.idempotency_key("run-7f3a") == "run-7f3a"
    assert parse.idempotency_key("k" * parse.MAX_IDEMPOTENCY_KEY) is not None


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "ten", "", "1e3", " 5"])
def test_bad_limit(raw: str) -> None:
    with pytest.raises(BadRequest, match="'limit' must be a whole number from 1 to 1000"):
        parse.limit(raw, 100, 1000)


@pytest.mark.parametrize("raw", ["", "abc", "-3", "1.5"])
def test_bad_cursor(raw: str) -> None:
    with pytest.raises(BadRequest, match="'cursor'"):
        parse.cursor(raw)


@pytest.mark.parametrize("raw", ["", "has space", "tab\t", "é", "k" * 256, "nul\0"])
def test_bad_idempotency_key(raw: str) -> None:
    with pytest.raises(BadRequest, match="Idempotency-Key"):
        parse.idempotency_key(raw)


@pytest.mark.parametrize(("raw", "ref"), [("12", 12), ("build", "build"), ("_a.b-c", "_a.b-c")])
def test_a_job_is_named_by_id_or_name(raw: str, ref: int | str) -> None:
    assert parse.job_ref(raw) == ref


@pytest.mark.parametrize("raw", ["1abc", "a b", "é", "", "x" * 65, "-x", ".x"])
def test_bad_job_names(raw: str) -> None:
    with pytest.raises(BadRequest, match="a job is named by its ID or by a name"):
        parse.job_ref(raw)


@pytest.mark.parametrize(
    ("raw", "number"), [("HUP", 1), ("sigint", 2), ("SIGUSR1", 10), ("15", 15)]
)
def test_signals_by_name_or_number(raw: str, number: int) -> None:
    assert parse.signal_number(raw) == number


@pytest.mark.parametrize("raw", ["NOPE", "0", "999", "", "-1"])
def test_bad_signals(raw: str) -> None:
    with pytest.raises(BadRequest, match="'signal'"):
        parse.signal_number(raw)


def test_a_run_may_name_its_job() -> None:
    assert parse.run_body(b'{"command": "make", "name": "build"}').name == "build"
    with pytest.raises(BadRequest, match="'name'"):
        parse.run_body(b'{"command": "make", "name": "12"}')
