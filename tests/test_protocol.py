"""The executor pipe protocol: framing, the restricted unpickler, job states."""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, get_args

import pytest

from worker import protocol
from worker.protocol import (
    ACTIVE_STATES,
    FINAL_STATES,
    KILLABLE_STATES,
    MAX_FRAME,
    DeleteJobs,
    ErrorReply,
    FindJob,
    GetStats,
    GetStatus,
    JobCreated,
    JobInfo,
    JobList,
    JobsDeleted,
    JobsForgotten,
    JobSnapshot,
    JobStatus,
    KillJob,
    ListJobs,
    Message,
    OutputChunk,
    Ping,
    Pong,
    ProtocolError,
    ReadOutput,
    RunJob,
    Stats,
    StdinWritten,
    WaitJob,
    WatchOutput,
    WriteStdin,
    decode,
    encode,
    read_message,
)

T = TypeVar("T")

SNAPSHOT = JobSnapshot(
    id=7,
    owner="alice",
    status=JobStatus.KILLED,
    command="sleep",
    args=("60", "ünïcødé", ""),
    pid=4242,
    exit_code=None,
    signal=9,
    started_at="2023-11-14T22:13:20.250Z",
    ended_at="2023-11-14T22:14:20.500Z",
)

MESSAGES: list[Message] = [
    RunJob(request_id=1, owner="alice", command="ls", args=("-la", "/")),
    RunJob(request_id=2, owner="bob", command="true", args=()),
    GetStatus(request_id=3, owner="alice", job_id=7),
    ReadOutput(request_id=4, owner="alice", job_id=7),
    ReadOutput(request_id=5, owner="alice", job_id=7, offset=123, limit=456),
    KillJob(request_id=6, owner="bob", job_id=9),
    JobCreated(request_id=7, job_id=12),
    JobInfo(request_id=8, job=SNAPSHOT),
    JobInfo(
        request_id=9,
        job=JobSnapshot(
            id=1,
            owner="bob",
            status=JobStatus.RUNNING,
            command="cat",
            args=(),
            pid=None,
            exit_code=None,
            signal=None,
            started_at=None,
            ended_at=None,
        ),
    ),
    OutputChunk(
        request_id=10,
        job_id=7,
        offset=0,
        data=bytes(range(256)) * 3,
        size=768,
        status=JobStatus.COMPLETED,
        eof=True,
    ),
    OutputChunk(
        request_id=11, job_id=7, offset=5, data=b"", size=5, status=JobStatus.FAILED, eof=False
    ),
    ErrorReply(request_id=12, code="job_not_found", message="job 3 not found"),
    RunJob(
        request_id=13,
        owner="alice",
        command="env",
        args=(),
        timeout=2.5,
        env=(("A", "1"), ("B", "two words")),
        cwd="/tmp",
    ),
    WatchOutput(request_id=14, owner="alice", job_id=3, offset=99),
    ListJobs(request_id=15, owner="alice", status=JobStatus.RUNNING),
    ListJobs(request_id=16, owner="bob"),
    WriteStdin(request_id=17, owner="alice", job_id=3, data=b"yes\n\0", close=True),
    JobList(request_id=18, jobs=(SNAPSHOT, SNAPSHOT)),
    StdinWritten(request_id=19, job_id=3, accepted=5, closed=True),
    Ping(request_id=20),
    Pong(request_id=21),
    FindJob(request_id=22, owner="alice", name="nightly"),
    WaitJob(request_id=23, owner="alice", job_id=7, timeout=12.5),
    DeleteJobs(request_id=24, owner="alice", job_ids=(3, 4)),
    DeleteJobs(request_id=25, owner="bob", job_ids=None),
    JobsDeleted(request_id=26, deleted=(3, 4)),
    JobsForgotten(job_ids=(3, 4)),
    GetStats(request_id=27),
    Stats(
        request_id=28,
        jobs_started=3,
        jobs_ended=(("failed", "start_error", 1),),
        running=(("alice", 1),),
        kills=(("signal", 2),),
        output_bytes=10,
        dropped_cap=2,
        dropped_budget=1,
        output_kept=7,
    ),
]


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_factory()

    return asyncio.run(main())


def frame(payload: bytes) -> bytes:
    return struct.pack("!Q", len(payload)) + payload


async def read_all(feeds: list[bytes]) -> list[Message | None]:
    """Read messages until None (or an error) while ``feeds`` and then EOF arrive.

    The pieces are fed one loop iteration apart, so the reader really sees a
    message arrive in several parts rather than all at once.
    """
    reader = asyncio.StreamReader()

    async def feed() -> None:
        for piece in feeds:
            reader.feed_data(piece)
            await asyncio.sleep(0)  # a bare yield to the reader, not a delay
        reader.feed_eof()

    feeder = asyncio.ensure_future(feed())
    results: list[Message | None] = []
    try:
        while True:
            message = await read_message(reader)
            results.append(message)
            if message is None:
                return results
    finally:
        feeder.cancel()


# --- encode / decode --------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = encode(message)
    (length,) = struct.unpack("!Q", data[:8])
    assert length == len(data) - 8
    decoded = decode(data[8:])
    assert decoded == message
    assert type(decoded) is type(message)


def test_round_trip_keeps_job_status_as_enum() -> None:
    decoded = decode(encode(JobInfo(request_id=1, job=SNAPSHOT))[8:])
    assert isinstance(decoded, JobInfo)
    assert decoded.job.status is JobStatus.KILLED
    assert decoded.job.args == SNAPSHOT.args


def test_every_message_class_is_covered() -> None:
    assert {type(m) for m in MESSAGES} == set(get_args(Message))
    assert len(get_args(Message)) == 22


class _SystemCall:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


class _ProtocolHelperCall:
    """A global from worker.protocol itself that is not a message class."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (protocol.encode, (ErrorReply(1, "x", "y"),))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(_SystemCall()),
        pickle.dumps(_SystemCall(), protocol=0),
        pickle.dumps(_ProtocolHelperCall()),
        pickle.dumps(ValueError("not a message")),
        pickle.dumps(struct.Struct),
        # A forbidden global nested inside an otherwise valid message.
        pickle.dumps(RunJob(1, "alice", "ls", (_SystemCall(),))),  # type: ignore[arg-type]
        pickle.dumps(ErrorReply(1, "x", _SystemCall())),  # type: ignore[arg-type]
    ],
    ids=[
        "os.system",
        "os.system-proto0",
        "protocol.encode",
        "ValueError",
        "class-ref",
        "nested-in-args",
        "nested-in-field",
    ],
)
def test_decode_refuses_foreign_globals(payload: bytes) -> None:
    with pytest.raises(ProtocolError, match="refusing to unpickle"):
        decode(payload)


@pytest.mark.parametrize(
    "value",
    [
        {"request_id": 1, "job_id": 2},
        [RunJob(1, "alice", "ls", ())],
        (JobCreated(1, 2),),
        "RunJob",
        42,
        None,
        SNAPSHOT,
        JobStatus.RUNNING,
    ],
    ids=["dict", "list", "tuple", "str", "int", "None", "JobSnapshot", "JobStatus"],
)
def test_decode_refuses_non_messages(value: object) -> None:
    with pytest.raises(ProtocolError, match="not a message"):
        decode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


@pytest.mark.parametrize(
    "payload",
    [b"", b"garbage", encode(JobCreated(1, 2))[8:-1]],
    ids=["empty", "garbage", "truncated"],
)
def test_decode_wraps_undecodable_bytes(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(payload)


# --- read_message -----------------------------------------------------------


def test_read_several_messages_from_one_feed() -> None:
    stream = b"".join(encode(m) for m in MESSAGES)
    results = run(lambda: read_all([stream]))
    assert results == [*MESSAGES, None]


def test_read_message_split_across_feeds() -> None:
    message = OutputChunk(1, 2, 0, b"x" * 1000, 1000, JobStatus.RUNNING, False)
    data = encode(message) + encode(JobCreated(3, 4))
    # Split inside the header, right after it, and inside the payload.
    cuts = [3, 8, 9, 500, len(data) - 2]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert b"".join(pieces) == data
    assert run(lambda: read_all(pieces)) == [message, JobCreated(3, 4), None]


def test_read_message_one_byte_at_a_time() -> None:
    data = encode(RunJob(1, "alice", "echo", ("hi",)))
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert run(lambda: read_all(pieces)) == [RunJob(1, "alice", "echo", ("hi",)), None]


def test_read_message_waits_for_data_fed_later() -> None:
    message = GetStatus(5, "bob", 6)
    data = encode(message)

    async def scenario() -> Message | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data[:10])
        task = asyncio.ensure_future(read_message(reader))
        await asyncio.sleep(0)  # let it block on the incomplete frame (no real sleep)
        assert not task.done()
        reader.feed_data(data[10:])
        return await task

    assert run(scenario) == message


def test_clean_eof_gives_none() -> None:
    assert run(lambda: read_all([])) == [None]


@pytest.mark.parametrize("cut", [1, 4, 7])
def test_eof_inside_header(cut: int) -> None:
    data = encode(JobCreated(1, 2))
    with pytest.raises(ProtocolError, match="header"):
        run(lambda: read_all([data[:cut]]))


@pytest.mark.parametrize("missing", [1, 10])
def test_eof_inside_frame(missing: int) -> None:
    data = encode(JobCreated(1, 2))
    with pytest.raises(ProtocolError, match="inside a frame"):
        run(lambda: read_all([data[:-missing]]))


def test_eof_right_after_header() -> None:
    data = encode(JobCreated(1, 2))
    with pytest.raises(ProtocolError, match="inside a frame"):
        run(lambda: read_all([data[:8]]))


def test_eof_after_good_message_then_partial_one() -> None:
    good = encode(JobCreated(1, 2))

    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(good + good[:5])
        reader.feed_eof()
        assert await read_message(reader) == JobCreated(1, 2)
        with pytest.raises(ProtocolError):
            await read_message(reader)

    run(scenario)


@pytest.mark.parametrize("size", [MAX_FRAME + 1, 2**64 - 1])
def test_oversize_length_is_refused_before_reading(size: int) -> None:
    # No payload follows: the length alone must be refused (not "ended inside a frame").
    header = struct.pack("!Q", size)
    with pytest.raises(ProtocolError, match="larger than"):
        run(lambda: read_all([header + b"\x80\x05"]))


def test_frame_of_max_size_is_not_refused_for_its_length() -> None:
    # Exactly MAX_FRAME is allowed; the stream then ends inside that frame.
    header = struct.pack("!Q", MAX_FRAME)
    with pytest.raises(ProtocolError, match="inside a frame"):
        run(lambda: read_all([header + b"\x80"]))


def test_read_message_refuses_forbidden_payload() -> None:
    with pytest.raises(ProtocolError, match="refusing"):
        run(lambda: read_all([frame(pickle.dumps(_SystemCall()))]))


def test_read_message_refuses_non_message_payload() -> None:
    with pytest.raises(ProtocolError, match="not a message"):
        run(lambda: read_all([frame(pickle.dumps({"a": 1}))]))


# --- JobStatus --------------------------------------------------------------


def test_state_groups_partition_all_states() -> None:
    assert set(JobStatus) == ACTIVE_STATES | FINAL_STATES
    assert not ACTIVE_STATES & FINAL_STATES
    assert {JobStatus.RUNNING} == ACTIVE_STATES
    assert {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.KILLED} == FINAL_STATES
    assert KILLABLE_STATES == ACTIVE_STATES


@pytest.mark.parametrize("status", list(JobStatus))
def test_is_final(status: JobStatus) -> None:
    assert status.is_final is (status in FINAL_STATES)
    assert status.is_final is (status is not JobStatus.RUNNING)


def test_status_values_are_stable_strings() -> None:
    assert {s.value for s in JobStatus} == {"running", "completed", "failed", "killed"}
    assert JobStatus("killed") is JobStatus.KILLED
    assert JobStatus.FAILED == "failed"
