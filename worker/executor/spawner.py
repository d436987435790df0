"""The spawner: a small process the executor keeps to clone its jobs, in
Python. The compiled one (spawn.c) does the same several times cheaper;
this one serves where it could not be built (no C compiler at install).

Cloning the executor itself would copy its page tables (all the output it
holds) for every job and run the child's setup in a copy of all of it; a
clone of this small process costs the same whatever the executor holds.
Children are cloned with ``CLONE_PARENT``: they are the executor's, which
reaps them and gets their exit status; the spawner only makes them.

The executor (through launcher.py) sends one request per job on a
SOCK_SEQPACKET socket (spawnwire.py: the ``Launch`` and, as SCM_RIGHTS, the
job's pipe ends and cgroup directory); the reply is the PID, with a pidfd.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import gc
import os
import signal
import socket
import sys

from worker.executor import clone, jobinit, spawnwire
from worker.executor.jobinit import Launch
from worker.linux import SERVER_OOM_SCORE_ADJ, oom_score_adj

_MAX_FDS = 8
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def main(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    oom_score_adj(SERVER_OOM_SCORE_ADJ)
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)  # the supervisor's to handle
    sock = socket.socket(fileno=fd)
    # Everything alive now stays alive: never scanned again, so the clones
    # (copies of this process) do not write to the pages they share.
    gc.collect()
    gc.freeze()
    while True:
        data, ancillary, _, _ = sock.recvmsg(
            spawnwire.MAX_MESSAGE, socket.CMSG_SPACE(4 * _MAX_FDS), socket.MSG_CMSG_CLOEXEC
        )
        if not data:
            return
        fds = [fd for _, _, raw in ancillary for fd in spawnwire.fds_of(raw)]
        reply, pidfd = _serve(data, fds)
        rights = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, pidfd.to_bytes(4, sys.byteorder))]
            if pidfd >= 0
            else []
        )
        sock.sendmsg([spawnwire.encode_reply(*reply)], rights)
        if pidfd >= 0:
            os.close(pidfd)


def _serve(data: bytes, fds: list[int]) -> tuple[tuple[int, int, str], int]:
    request_id = 0
    try:
        request_id = spawnwire.request_id_of(data)  # for a refusal's reply
        if (in_memfd := spawnwire.memfd_request(data)) is not None:
            request_id, memfd = in_memfd, fds.pop()
            data = os.pread(memfd, os.fstat(memfd).st_size, 0)
            os.close(memfd)
        request_id, launch = spawnwire.decode_launch(data)
        stdin_fd, output_fd, report_fd, cgroup_fd = fds
        try:
            pid, pidfd, launch = _clone(launch, cgroup_fd)
        except OSError as exc:
            raise OSError(exc.errno, f"creating its process: {exc.strerror}") from exc
        if pid == 0:
            jobinit.child(launch, stdin_fd, output_fd, report_fd)
        return (request_id, pid, ""), pidfd
    except OSError as exc:
        return (request_id, -(exc.errno or 1), exc.strerror or str(exc)), -1
    except Exception as exc:  # a malformed request: refuse it, stay up
        return (request_id, -22, f"bad launch request: {exc}"), -1
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _clone(launch: Launch, cgroup_fd: int) -> tuple[int, int, Launch]:
    """``(pid, pidfd, launch)``; the child gets ``(0, -1, what it must do)``."""
    flags = launch.clone_flags()
    into = cgroup_fd if _is_directory(cgroup_fd) else -1
    try:
        return (*clone.clone3(flags, into), launch)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:  # else clone3 is filtered here
            raise
    if into >= 0:  # not born in its cgroup: it joins it before it execs
        launch = dataclasses.replace(launch, join=(*launch.join, _procs_of(into)))
    return (*clone.clone_legacy(flags), launch)


def _is_directory(fd: int) -> bool:
    try:
        return os.path.isdir(f"/proc/self/fd/{fd}")
    except OSError:
        return False


def _procs_of(directory_fd: int) -> bytes:
    return os.fsencode(os.path.join(os.readlink(f"/proc/self/fd/{directory_fd}"), "cgroup.procs"))


if __name__ == "__main__":
    main(int(sys.argv[1]))
