"""The executor-spawner wire format, spoken by both spawners (spawner.py and
the compiled spawn.c).

A request is one SOCK_SEQPACKET message: a header of seven 32-bit native
integers (the request id, signed as in the reply; flags, uid, gid, and the
numbers of arguments, environment entries and cgroup files to join) and
then NUL-terminated strings: the arguments, the environment as
``KEY=VALUE``, the working directory (if flag CWD), the cgroup files. As
SCM_RIGHTS it carries the job's stdin, output and report pipe ends and its
cgroup directory (or /dev/null). A request longer than MAX_MESSAGE travels
in a memfd: the message is then ``memfd`` and the request id, and the memfd
is a fifth descriptor.

A reply is the request id and the PID (or minus an errno), two 32-bit
integers, then the error message in UTF-8; with a PID comes its pidfd.
"""

from __future__ import annotations

import errno
import struct
import sys

from worker.executor.jobinit import Launch

MAX_MESSAGE = 1 << 16
_HEADER = struct.Struct("=iIiiIII")
_REPLY = struct.Struct("=ii")

PID_NS, MOUNT_NS, NETWORK_NONE, IDS, CWD = 1, 2, 4, 8, 16


def _checked(text: bytes, what: str) -> bytes:
    if b"\0" in text:
        raise OSError(errno.EINVAL, f"{what} holds a NUL byte")
    return text


def encode_launch(request_id: int, launch: Launch) -> bytes:
    flags = (
        (PID_NS if launch.pid_namespace else 0)
        | (MOUNT_NS if launch.mount_namespace else 0)
        | (NETWORK_NONE if launch.network_none else 0)
    )
    ids = launch.uid is not None and launch.gid is not None
    if ids:
        flags |= IDS
    if launch.cwd is not None:
        flags |= CWD
    strings = [_checked(arg, "an argument") for arg in launch.argv]
    for key, value in launch.env:
        if b"=" in key or not key:
            raise OSError(errno.EINVAL, f"bad environment variable name {key!r}")
        strings.append(_checked(key, "a variable name") + b"=" + _checked(value, "a variable"))
    if launch.cwd is not None:
        strings.append(_checked(launch.cwd, "the working directory"))
    strings.extend(_checked(path, "a cgroup path") for path in launch.join)
    header = _HEADER.pack(
        request_id,
        flags,
        launch.uid if ids else -1,
        launch.gid if ids else -1,
        len(launch.argv),
        len(launch.env),
        len(launch.join),
    )
    return header + b"".join(text + b"\0" for text in strings)


def decode_launch(data: bytes) -> tuple[int, Launch]:
    """The Python spawner's reading of a request; ValueError if malformed."""
    if len(data) < _HEADER.size:
        raise ValueError("too short")
    request_id, flags, uid, gid, argc, envc, njoin = _HEADER.unpack_from(data)
    texts = data[_HEADER.size :].split(b"\0")
    wanted = argc + envc + njoin + (1 if flags & CWD else 0)
    if argc < 1 or len(texts) < wanted + 1:
        raise ValueError("counts")
    argv = tuple(texts[:argc])
    env = tuple(
        (key, value)
        for key, _, value in (entry.partition(b"=") for entry in texts[argc : argc + envc])
    )
    at = argc + envc
    cwd = None
    if flags & CWD:
        cwd, at = texts[at], at + 1
    join = tuple(texts[at : at + njoin])
    return request_id, Launch(
        argv,
        env,
        cwd,
        uid if flags & IDS else None,
        gid if flags & IDS else None,
        bool(flags & PID_NS),
        bool(flags & MOUNT_NS),
        bool(flags & NETWORK_NONE),
        join,
    )


def request_id_of(data: bytes) -> int:
    """The id of even a malformed request, for the reply that refuses it."""
    return int.from_bytes(data[:4], sys.byteorder, signed=True) if len(data) >= 4 else 0


def memfd_marker(request_id: int) -> bytes:
    return b"memfd" + request_id.to_bytes(4, sys.byteorder, signed=True)


def memfd_request(data: bytes) -> int | None:
    """The request id, if ``data`` says the request is in a memfd."""
    if len(data) == 9 and data.startswith(b"memfd"):
        return int.from_bytes(data[5:], sys.byteorder, signed=True)
    return None


def encode_reply(request_id: int, pid: int, message: str) -> bytes:
    return _REPLY.pack(request_id, pid) + message.encode("utf-8", "replace")


def decode_reply(data: bytes) -> tuple[int, int, str]:
    request_id, pid = _REPLY.unpack_from(data)
    return request_id, pid, data[_REPLY.size :].decode("utf-8", "replace")


def fds_of(raw: bytes) -> list[int]:
    """The descriptors of one SCM_RIGHTS message."""
    usable = len(raw) - len(raw) % 4
    return list(struct.unpack(f"{usable // 4}i", raw[:usable]))
