"""The executor's side of the spawner (see spawner.py): requests a job
process and awaits its PID."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import pickle
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence

from worker.executor.jobinit import Launch
from worker.executor.spawner import MAX_MESSAGE, decode_reply, fds_of


class SpawnerGone(OSError):
    """The spawner process is not there any more."""


class Spawner:
    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self._sock = sock
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_reply)

    @classmethod
    def start(cls) -> Spawner:
        """Start the spawner as our child (so that its clones are too)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.executor.spawner", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        theirs.close()
        ours.setblocking(False)
        return cls(process, ours)

    async def launch(
        self, launch: Launch, fds: Sequence[int], cgroup_fd: int | None
    ) -> tuple[int, int]:
        """``(pid, pidfd)`` of the new job process. ``fds``: its stdin,
        output and report pipe ends (ours stay open: close them after)."""
        request_id = next(self._ids)
        payload = pickle.dumps((request_id, dataclasses.astuple(launch)), protocol=5)
        sent = [*fds, cgroup_fd if cgroup_fd is not None else os.open(os.devnull, os.O_RDONLY)]
        memfd = None
        if len(payload) > MAX_MESSAGE:
            memfd = os.memfd_create("launch", os.MFD_CLOEXEC)
            os.write(memfd, payload)
            payload, sent = b"memfd", [*sent, memfd]
        future = self._loop.create_future()
        self._waiting[request_id] = future
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(sent)}i", *sent))]
            try:
                self._sock.sendmsg([payload], rights)
            except BlockingIOError:
                await self._writable()
                self._sock.sendmsg([payload], rights)
            except (BrokenPipeError, ConnectionError) as exc:
                raise SpawnerGone(exc.errno, "the spawner process is gone") from exc
            pid, pidfd = await future
            return pid, pidfd
        finally:
            self._waiting.pop(request_id, None)
            if cgroup_fd is None:
                os.close(sent[3])
            if memfd is not None:
                os.close(memfd)

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
                    256, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC
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
                for fd in pidfds:
                    os.close(fd)
            elif pid > 0 and pidfds:
                future.set_result((pid, pidfds[0]))
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
