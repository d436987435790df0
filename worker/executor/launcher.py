"""The executor's side of the spawner: requests a job process and awaits
its PID. The spawner is the compiled one (spawn.c, built at install as
``worker-spawn`` beside it) where it exists, else spawner.py."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from worker.executor.jobinit import Launch
from worker.executor.spawnwire import (
    MAX_MESSAGE,
    decode_reply,
    encode_launch,
    fds_of,
    memfd_marker,
)
from worker.linux import JOB_OOM_SCORE_ADJ, SERVER_OOM_SCORE_ADJ

log = logging.getLogger("worker.executor")

NATIVE = Path(__file__).with_name("worker-spawn")


def native_spawner() -> Path | None:
    """The compiled spawner, if it was built (and can run) here."""
    return NATIVE if os.access(NATIVE, os.X_OK) else _installed_twin()


def _installed_twin() -> Path | None:
    """Run from a checkout with no compiled spawner of its own (as the
    tests are, against the installed wheel): the installed package's, if it
    was compiled from this very source."""
    from importlib import metadata

    try:
        ours = NATIVE.with_name("spawn.c").read_bytes()
    except OSError:
        return None
    # (The checkout's own metadata, a build's egg-info, may come first.)
    for installed in metadata.distributions(name="worker"):
        binary = Path(str(installed.locate_file("worker/executor/worker-spawn")))
        source = Path(str(installed.locate_file("worker/executor/spawn.c")))
        try:
            if os.access(binary, os.X_OK) and source.read_bytes() == ours:
                return binary
        except OSError:
            continue
    return None


def spawner_command(fd: int, native: bool = True) -> tuple[list[str], bool]:
    """How to start a spawner that serves the socket ``fd``, and whether it
    is the compiled one (if ``native`` and built), not the Python one."""
    helper = native_spawner() if native else None
    if helper is None:
        return [sys.executable, "-m", "worker.executor.spawner", str(fd)], False
    return [str(helper), str(fd), str(JOB_OOM_SCORE_ADJ), str(SERVER_OOM_SCORE_ADJ)], True


def spawner_process(
    native: bool = True, under: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], socket.socket, bool]:
    """A spawner process (run by the command ``under``, if given, which
    must exec its arguments), our end of its socket (blocking), and whether
    it is the compiled one."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        argv, compiled = spawner_command(theirs.fileno(), native)
        process = subprocess.Popen(
            [*under, *argv], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True
        )
    return process, ours, compiled


class SpawnerGone(OSError):
    """The spawner process is not there any more."""


class Spawner:
    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket, native: bool) -> None:
        self.process = process
        self.native = native
        self._sock = sock
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_reply)

    @classmethod
    def start(cls, native: bool = True, under: Sequence[str] = ()) -> Spawner:
        """Start the spawner as our child (so that its clones are too): the
        compiled one if ``native`` and it exists, else the Python one (run
        by the command ``under``, if given)."""
        process, ours, compiled = spawner_process(native, under)
        ours.setblocking(False)
        return cls(process, ours, compiled)

    def describe(self) -> str:
        if self.native:
            return "jobs started by the compiled spawner"
        return "jobs started by the Python spawner (slower: none was compiled at install)"

    async def launch(
        self, launch: Launch, fds: Sequence[int], cgroup_fd: int | None
    ) -> tuple[int, int]:
        """``(pid, pidfd)`` of the new job process. ``fds``: its stdin,
        output and report pipe ends (ours stay open: close them after)."""
        request_id = next(self._ids) & 0x7FFFFFFF  # a 32-bit field each side reads signed
        payload = encode_launch(request_id, launch)
        ours: list[int] = []  # opened here, closed here
        future = self._loop.create_future()
        self._waiting[request_id] = future
        try:
            if cgroup_fd is None:
                ours.append(cgroup_fd := os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            sent = [*fds, cgroup_fd]
            if len(payload) > MAX_MESSAGE:
                ours.append(memfd := os.memfd_create("launch", os.MFD_CLOEXEC))
                os.write(memfd, payload)
                payload, sent = memfd_marker(request_id), [*sent, memfd]
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(sent)}i", *sent))]
            try:
                try:
                    self._sock.sendmsg([payload], rights)
                except BlockingIOError:
                    await self._writable()
                    self._sock.sendmsg([payload], rights)
            except (BrokenPipeError, ConnectionError, BlockingIOError) as exc:
                raise SpawnerGone(exc.errno, "the spawner process is gone") from exc
            pid, pidfd = await future
            return pid, pidfd
        finally:
            self._waiting.pop(request_id, None)
            for fd in ours:
                os.close(fd)

    async def _writable(self) -> None:
        ready = self._loop.create_future()
        self._loop.add_writer(self._sock.fileno(), ready.set_result, None)
        try:
            await ready
        finally:
            self._loop.remove_writer(self._sock.fileno())

    def _on_reply(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(
                    1024, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._gone()
                return
            request_id, pid, message = decode_reply(data)
            pidfds = [fd for _, _, raw in ancillary for fd in fds_of(raw)]
            future = self._waiting.get(request_id)
            if future is None or future.done():
                # Its launch was given up meanwhile: nobody would track it.
                if pid > 0:
                    _kill_child(pid)
                for fd in pidfds:
                    os.close(fd)
                if pid < 0:  # a refusal of a request it could not even read
                    log.error("the spawner refused request %d: %s", request_id, message)
            elif pid > 0 and pidfds:
                future.set_result((pid, pidfds[0]))
            elif pid > 0:
                # Started, but its pidfd was dropped on the way in: the kernel
                # does that when we have no descriptor left for it.
                _kill_child(pid)
                future.set_exception(
                    OSError(errno.EMFILE, "its pidfd could not be received (no descriptor left)")
                )
            else:
                future.set_exception(OSError(-pid, message))

    def _gone(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(SpawnerGone(0, "the spawner process is gone"))

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()  # it exits on EOF
        with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()


def _kill_child(pid: int) -> None:
    """SIGKILL a job process the spawner started (our child: it clones with
    CLONE_PARENT) that cannot be tracked. Only while it is unreaped, its
    PID still its own; an init takes its whole PID namespace with it."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return  # reaped already: the PID may be anyone's now
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
