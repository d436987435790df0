"""How replies are rebuilt: every field as sent, without the dataclasses'
``__init__``, and a settled job the reader already holds as that very
snapshot (the API's list of a hundred kept jobs builds none of them)."""

from __future__ import annotations

import gc
import pickle
from typing import Any

import pytest

from worker.protocol import (
    Isolation,
    JobCreated,
    JobInfo,
    JobList,
    JobSnapshot,
    JobStatus,
    Limits,
    Usage,
    decode,
    encode,
)


def snapshot(job_id: int, owner: str = "alice", settled: bool = True) -> JobSnapshot:
    return JobSnapshot(
        job_id,
        owner,
        JobStatus.COMPLETED if settled else JobStatus.RUNNING,
        "true",
        ("a",),
        100 + job_id,
        0 if settled else None,
        None,
        "2024-01-01T00:00:00.000Z",
        "2024-01-01T00:00:01.000Z" if settled else None,
        isolation=Isolation(1000, 1000, True, True, "none", True),
        limits=Limits(memory=1 << 30, cpus=0.5),
        unapplied=(("pids", "no pids controller"),),
        usage=Usage(0.25, 1 << 20, 3),
        name=f"n{job_id}",
        settled=settled,
    )


def payload(message: Any) -> bytes:
    return encode(message)[8:]


def test_rebuilt_messages_are_equal_and_frozen() -> None:
    sent = JobList(1, (snapshot(1), snapshot(2, settled=False)), next_before=1)
    got = decode(payload(sent))
    assert got == sent and type(got) is JobList
    assert isinstance(got, JobList) and type(got.jobs[0].usage) is Usage
    with pytest.raises(AttributeError):
        got.jobs[0].status = JobStatus.FAILED  # type: ignore[misc]


class _Short:
    """An encoding that leaves out trailing fields (ours never does)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobCreated, (5, 6))


def test_fields_left_out_take_their_defaults() -> None:
    assert decode(pickle.dumps(_Short(), protocol=5)) == JobCreated(5, 6, existing=False)


def test_a_held_settled_job_is_that_snapshot() -> None:
    held = {1: snapshot(1), 2: snapshot(2)}
    sent = JobList(9, (snapshot(1), snapshot(2), snapshot(3)))
    got = decode(payload(sent), held.get)
    assert isinstance(got, JobList) and got == sent
    assert got.jobs[0] is held[1] and got.jobs[1] is held[2]
    assert got.jobs[2] is not sent.jobs[2]  # not held: built
    info = decode(payload(JobInfo(3, snapshot(2))), held.get)
    assert isinstance(info, JobInfo) and info.job is held[2]


def test_only_settled_jobs_of_the_same_owner_are_taken_from_what_is_held() -> None:
    held = {1: snapshot(1), 2: snapshot(2)}
    running = snapshot(1, settled=False)  # (cannot happen: a sanity check)
    got = decode(payload(JobList(1, (running, snapshot(2, owner="bob")))), held.get)
    assert isinstance(got, JobList) and got.jobs == (running, snapshot(2, owner="bob"))
    assert got.jobs[0] is not held[1] and got.jobs[1] is not held[2]


def test_decoding_leaves_no_cycles_for_the_collector() -> None:
    held = {1: snapshot(1)}
    data = payload(JobList(1, (snapshot(1), snapshot(2, settled=False))))
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            decode(data, held.get)
            decode(data)
        assert gc.collect() == 0
    finally:
        gc.enable()
