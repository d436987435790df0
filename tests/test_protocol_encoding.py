"""The exact bytes of every message type, pinned.

Both ends of the executor pipe must encode alike whatever supported Python
they run (Debian 12's 3.11.2 once pickled enum members differently and broke
the server on its first request). CI runs this on every supported Python; a
version that encodes differently fails here instead of in production.

After a deliberate change to a message, print the new values with
``python -m tests.test_protocol_encoding`` and review the diff.
"""

from __future__ import annotations

import pickle
import sys
from typing import get_args

import pytest

from worker.protocol import (
    DeleteJobs,
    ErrorReply,
    FindJob,
    GetStats,
    GetStatus,
    Isolation,
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
)

_SNAPSHOT = JobSnapshot(
    id=7,
    owner="alice",
    status=JobStatus.KILLED,
    command="sleep",
    args=("60", "ünï"),
    pid=4242,
    exit_code=None,
    signal=9,
    started_at="2023-11-14T22:13:20.250Z",
    ended_at=None,
    reason="kill",
    isolation=Isolation(61234, 61234, True, True, "none", True),
    name="nightly",
    error="sleep: cannot start: Resource temporarily unavailable",
)

SAMPLES: dict[str, Message] = {
    "RunJob": RunJob(
        1, "alice", "env", ("-0",), 2.5, (("A", "1"),), "/tmp", 123.25, "key-1", "none", name="b"
    ),
    "GetStatus": GetStatus(2, "bob", 3),
    "ReadOutput": ReadOutput(3, "alice", 7, 10, 20),
    "WatchOutput": WatchOutput(4, "alice", 7, 99, 1 << 20),
    "KillJob": KillJob(5, "alice", 7, 99.5, signal=1, force=True),
    "FindJob": FindJob(16, "alice", "nightly"),
    "WaitJob": WaitJob(17, "alice", 7, 12.5),
    "DeleteJobs": DeleteJobs(18, "alice", (3, 4)),
    "JobsDeleted": JobsDeleted(19, (3, 4)),
    "JobsForgotten": JobsForgotten((3, 4)),
    "ListJobs": ListJobs(6, "alice", JobStatus.RUNNING, 50, 1000),
    "WriteStdin": WriteStdin(7, "alice", 7, b"yes\n\0\xff", True, 7.0),
    "JobCreated": JobCreated(8, 12, True),
    "JobInfo": JobInfo(9, _SNAPSHOT),
    "OutputChunk": OutputChunk(10, 7, 5, b"\x00\xffhi", 9, JobStatus.COMPLETED, True, 5),
    "JobList": JobList(11, (_SNAPSHOT,), 6),
    "StdinWritten": StdinWritten(12, 7, 6, False),
    "ErrorReply": ErrorReply(13, "job_not_found", "job 3 not found"),
    "Ping": Ping(14),
    "Pong": Pong(15),
    "GetStats": GetStats(20),
    "Stats": Stats(
        21,
        jobs_started=5,
        jobs_ended=(("completed", "none", 2), ("killed", "kill", 1)),
        running=(("alice", 2), ("bob", 0)),
        kills=(("kill", 1), ("timeout", 3)),
        output_bytes=1 << 40,
        dropped_cap=4000,
        dropped_budget=0,
        output_kept=65536,
    ),
}

PINNED = {
    "RunJob": "000000000000007e80059573000000000000008c0f776f726b65722e70726f746f636f6c948c0652756e4a6f62949394284b018c05616c696365948c03656e76948c022d309485944740040000000000008c0141948c013194869485948c042f746d709447405ed000000000008c056b65792d31948c046e6f6e65944e8c016294749452942e",
    "GetStatus": "000000000000003a8005952f000000000000008c0f776f726b65722e70726f746f636f6c948c094765745374617475739493944b028c03626f62944b03879452942e",
    "ReadOutput": "000000000000004280059537000000000000008c0f776f726b65722e70726f746f636f6c948c0a526561644f7574707574949394284b038c05616c696365944b074b0a4b14749452942e",
    "WatchOutput": "00000000000000468005953b000000000000008c0f776f726b65722e70726f746f636f6c948c0b57617463684f7574707574949394284b048c05616c696365944b074b634a00001000749452942e",
    "KillJob": "00000000000000478005953c000000000000008c0f776f726b65722e70726f746f636f6c948c074b696c6c4a6f62949394284b058c05616c696365944b07474058e000000000004b0188749452942e",
    "FindJob": "000000000000004280059537000000000000008c0f776f726b65722e70726f746f636f6c948c0746696e644a6f629493944b108c05616c696365948c076e696768746c7994879452942e",
    "WaitJob": "000000000000004480059539000000000000008c0f776f726b65722e70726f746f636f6c948c07576169744a6f62949394284b118c05616c696365944b07474029000000000000749452942e",
    "DeleteJobs": "000000000000004180059536000000000000008c0f776f726b65722e70726f746f636f6c948c0a44656c6574654a6f62739493944b128c05616c696365944b034b048694879452942e",
    "JobsDeleted": "000000000000003a8005952f000000000000008c0f776f726b65722e70726f746f636f6c948c0b4a6f627344656c657465649493944b134b034b048694869452942e",
    "JobsForgotten": "000000000000003a8005952f000000000000008c0f776f726b65722e70726f746f636f6c948c0d4a6f6273466f72676f7474656e9493944b034b048694859452942e",
    "ListJobs": "000000000000006b80059560000000000000008c0f776f726b65722e70726f746f636f6c948c084c6973744a6f6273949394284b068c05616c696365948c0d776f726b65722e737461746573948c094a6f625374617475739493948c0772756e6e696e6794859452944b324de803749452942e",
    "WriteStdin": "000000000000005180059546000000000000008c0f776f726b65722e70726f746f636f6c948c0a5772697465537464696e949394284b078c05616c696365944b0743067965730a00ff948847401c000000000000749452942e",
    "JobCreated": "00000000000000368005952b000000000000008c0f776f726b65722e70726f746f636f6c948c0a4a6f62437265617465649493944b084b0c88879452942e",
    "JobInfo": "00000000000001278005951c010000000000008c0f776f726b65722e70726f746f636f6c948c074a6f62496e666f9493944b0968008c0b4a6f62536e617073686f74949394284b078c05616c696365948c0d776f726b65722e737461746573948c094a6f625374617475739493948c066b696c6c656494859452948c05736c656570948c023630948c05c3bc6ec3af9486944d92104e4b098c18323032332d31312d31345432323a31333a32302e3235305a944e8c046b696c6c9468008c0949736f6c6174696f6e949394284d32ef4d32ef88888c046e6f6e659488749452944e294e8c076e696768746c79948c35736c6565703a2063616e6e6f742073746172743a205265736f757263652074656d706f726172696c7920756e617661696c61626c65948974945294869452942e",
    "OutputChunk": "000000000000007480059569000000000000008c0f776f726b65722e70726f746f636f6c948c0b4f75747075744368756e6b949394284b0a4b074b05430400ff6869944b098c0d776f726b65722e737461746573948c094a6f625374617475739493948c09636f6d706c657465649485945294884b0589749452942e",
    "JobList": "000000000000012b80059520010000000000008c0f776f726b65722e70726f746f636f6c948c074a6f624c6973749493944b0b68008c0b4a6f62536e617073686f74949394284b078c05616c696365948c0d776f726b65722e737461746573948c094a6f625374617475739493948c066b696c6c656494859452948c05736c656570948c023630948c05c3bc6ec3af9486944d92104e4b098c18323032332d31312d31345432323a31333a32302e3235305a944e8c046b696c6c9468008c0949736f6c6174696f6e949394284d32ef4d32ef88888c046e6f6e659488749452944e294e8c076e696768746c79948c35736c6565703a2063616e6e6f742073746172743a205265736f757263652074656d706f726172696c7920756e617661696c61626c6594897494529485944b06879452942e",
    "StdinWritten": "000000000000003b80059530000000000000008c0f776f726b65722e70726f746f636f6c948c0c537464696e5772697474656e949394284b0c4b074b0689749452942e",
    "ErrorReply": "00000000000000558005954a000000000000008c0f776f726b65722e70726f746f636f6c948c0a4572726f725265706c799493944b0d8c0d6a6f625f6e6f745f666f756e64948c0f6a6f622033206e6f7420666f756e6494879452942e",
    "Ping": "000000000000002d80059522000000000000008c0f776f726b65722e70726f746f636f6c948c0450696e679493944b0e859452942e",
    "Pong": "000000000000002d80059522000000000000008c0f776f726b65722e70726f746f636f6c948c04506f6e679493944b0f859452942e",
    "GetStats": "000000000000003180059526000000000000008c0f776f726b65722e70726f746f636f6c948c0847657453746174739493944b14859452942e",
    "Stats": "000000000000009e80059593000000000000008c0f776f726b65722e70726f746f636f6c948c055374617473949394284b154b058c09636f6d706c65746564948c046e6f6e65944b0287948c066b696c6c6564948c046b696c6c944b01879486948c05616c696365944b0286948c03626f62944b008694869468074b0186948c0774696d656f7574944b03869486948a060000000000014da00f4b004a00000100749452942e",
}


def test_every_message_type_is_pinned() -> None:
    names = {cls.__name__ for cls in get_args(Message)}
    assert set(SAMPLES) == names
    assert set(PINNED) == names
    assert all(type(message).__name__ == name for name, message in SAMPLES.items())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_encoding_is_pinned(name: str) -> None:
    encoded = encode(SAMPLES[name]).hex()
    assert encoded == PINNED[name], f"{name} encodes differently on Python {sys.version.split()[0]}"
    assert decode(bytes.fromhex(PINNED[name])[8:]) == SAMPLES[name]


def test_enum_members_travel_by_value() -> None:
    encoded = encode(ListJobs(1, "alice", JobStatus.FAILED))
    assert b"failed" in encoded
    assert b"FAILED" not in encoded
    assert b"getattr" not in encoded


def test_enum_pickled_by_name_is_refused() -> None:
    """What Python 3.11.2 used to send: ``getattr(JobStatus, 'RUNNING')``."""

    class ByName:
        def __reduce__(self) -> tuple[object, ...]:
            return (getattr, (JobStatus, "RUNNING"))

    payload = pickle.dumps(ListJobs(1, "alice", ByName()), protocol=5)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match=r"refusing to unpickle builtins\.getattr"):
        decode(payload)


if __name__ == "__main__":
    for sample_name, sample in SAMPLES.items():
        print(f'    "{sample_name}": "{encode(sample).hex()}",')
