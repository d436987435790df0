"""The child side of a job's start: what runs between clone and exec.

This code runs in a fresh clone of the spawner (see spawner.py), so it uses
nothing but system calls: no event loop, no threads, no logging. It reports
through the *report pipe*, one line per event, which the executor reads:

- ``E<errno> <phase>``: the job could not start (phase: cwd, exec, setup);
- ``S``: the command is running (exec succeeded);
- ``X<wait status>``: the job's main process ended (init mode only).

Two shapes. *Direct*: the clone is the job's main process and execs the
command (EOF on the report pipe, which closes on exec, says it started).
*Init*: the clone is PID 1 of a new PID namespace; it sets up the mount and
network namespaces, forks the command, reports, passes signals on to every
process of the namespace, reaps whatever ends there, and exits once nothing
is left, as tini does.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

from worker.executor import clone
from worker.linux import JOB_OOM_SCORE_ADJ

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
# Signals a job starts with in their default disposition (Python ignores
# SIGPIPE and SIGXFSZ in itself, and the spawner handles INT and HUP).
_RESET = ("SIGPIPE", "SIGXFSZ", "SIGXFZ", "SIGINT", "SIGHUP", "SIGTERM", "SIGQUIT", "SIGUSR1")


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything the child needs, as plain values (it crosses the
    executor-spawner socket as a tuple)."""

    argv: tuple[bytes, ...]
    env: tuple[tuple[bytes, bytes], ...]
    cwd: bytes | None
    uid: int | None  # None: stay the server's user
    gid: int | None
    pid_namespace: bool = False
    mount_namespace: bool = False
    network_none: bool = False
    join: tuple[bytes, ...] = ()  # cgroup.procs files the child writes itself into

    @property
    def init(self) -> bool:
        return self.pid_namespace

    def clone_flags(self) -> int:
        flags = clone.CLONE_PARENT
        if self.pid_namespace:
            flags |= clone.CLONE_NEWPID
        if self.mount_namespace:
            flags |= clone.CLONE_NEWNS
        if self.network_none:
            flags |= clone.CLONE_NEWNET
        return flags


class _Failed(Exception):
    """A step of the start failed: ``phase`` (setup, cwd, exec) tells the
    executor how to word it, ``step`` what exactly was being done."""

    def __init__(self, code: int, phase: str, step: str = "") -> None:
        super().__init__(code, phase, step)
        self.code = code
        self.phase = phase
        self.step = step

    def line(self) -> str:
        return f"E{self.code} {self.phase} {self.step}".rstrip()


def _unexpected(exc: BaseException) -> str:
    """The report of an error no step expected: named, so it can be found."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return f"E{errno.EINVAL} setup {text[:200]}"


def child(launch: Launch, stdin_fd: int, output_fd: int, report_fd: int) -> NoReturn:
    """Entry of the clone: never returns."""
    try:
        # Before anything else: a job, not the server, is the OOM killer's pick.
        _write_file(b"/proc/self/oom_score_adj", str(JOB_OOM_SCORE_ADJ).encode())
        _setup_namespaces(launch)
        _join_cgroups(launch.join)
        if launch.init:
            _run_init(launch, stdin_fd, output_fd, report_fd)
        _exec(launch, stdin_fd, output_fd, report_fd)
    except _Failed as failure:
        _report(report_fd, failure.line())
    except BaseException as exc:  # never let a copy of the spawner run on
        _report(report_fd, _unexpected(exc))
    os._exit(127)


def _report(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, line.encode() + b"\n")


def _setup_namespaces(launch: Launch) -> None:
    if launch.mount_namespace:
        # Private, so our mounts never show outside (hosts where / is
        # shared, as systemd makes it, would otherwise propagate them).
        with _step("making its mounts private"):
            clone.mount(None, "/", None, clone.MS_REC | clone.MS_PRIVATE)
        if launch.pid_namespace:
            with _step("mounting its /proc"):
                flags = clone.MS_NOSUID | clone.MS_NODEV | clone.MS_NOEXEC
                clone.mount("proc", "/proc", "proc", flags)
        with _step("mounting its /tmp"):
            private = clone.MS_NOSUID | clone.MS_NODEV
            clone.mount("tmpfs", "/tmp", "tmpfs", private, "mode=1777")  # noqa: S108 - the job's own
    if launch.network_none:
        with _step("bringing up its loopback"):
            _loopback_up()


@contextlib.contextmanager
def _step(what: str, phase: str = "setup") -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _Failed(exc.errno or errno.EPERM, phase, what) from exc


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _write_file(path: bytes, data: bytes) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _join_cgroups(files: tuple[bytes, ...]) -> None:
    # Before any code of the job runs: it is born inside, as with clone3.
    me = str(os.getpid()).encode()
    for path in files:
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, me)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _Failed(exc.errno or errno.EIO, "setup", "joining its cgroup") from exc


def _exec(launch: Launch, stdin_fd: int, output_fd: int, report_fd: int) -> NoReturn:
    """Become the job's command (the main process of the job)."""
    os.setsid()
    os.dup2(stdin_fd, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    for fd in (stdin_fd, output_fd):
        if fd > 2:
            os.close(fd)
    os.set_inheritable(report_fd, False)  # closes on exec: EOF says "started"
    _close_all_but(report_fd)
    for name in _RESET:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if launch.uid is not None and launch.gid is not None:
        with _step(f"switching to uid {launch.uid}"):
            os.setgroups([])
            os.setresgid(launch.gid, launch.gid, launch.gid)
            os.setresuid(launch.uid, launch.uid, launch.uid)
    if launch.cwd is not None:
        try:
            os.chdir(launch.cwd)
        except OSError as exc:
            raise _Failed(exc.errno or errno.ENOENT, "cwd") from exc
    try:
        exec_searching(launch.argv, dict(launch.env))
    except OSError as exc:
        raise _Failed(exc.errno or errno.ENOEXEC, "exec") from exc


def exec_searching(argv: tuple[bytes, ...] | list[bytes], env: dict[bytes, bytes]) -> NoReturn:
    """``os.execvpe`` without its imports: it imports ``warnings``, which
    the job's uid may be unable to read (a Python under /root, a venv under
    a /tmp the job no longer sees). This runs after the uid switch, so it
    must import nothing. Like execvp(3): the first error other than "not
    there" wins, else the last."""
    command = argv[0]
    if b"/" in command:
        os.execve(command, argv, env)  # noqa: S606 - no shell, by design
    path = env.get(b"PATH", os.fsencode(os.defpath))
    first: OSError | None = None
    last: OSError | None = None
    for directory in path.split(b":"):
        try:
            os.execve(os.path.join(directory or b".", command), argv, env)  # noqa: S606
        except (FileNotFoundError, NotADirectoryError) as exc:
            last = exc
        except OSError as exc:
            last = exc
            first = first or exc
    raise first or last or FileNotFoundError(errno.ENOENT, "not found")


def _run_init(launch: Launch, stdin_fd: int, output_fd: int, report_fd: int) -> NoReturn:
    """PID 1 of the job's namespace. It lives as long as the job, so it does
    as little as it can (every page it writes is a page of its own): it
    waits for signals rather than handling them, as tini does."""
    # A session of its own: a terminal's signals to the server's group
    # (Ctrl-C, Ctrl-Z) are not passed on to the job.
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NAME, b"worker-init", 0, 0, 0)
    # If the executor dies, so does the namespace (the kernel kills the rest).
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    every = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, every)
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    main, pidfd = _plain_fork()
    if main == 0:
        os.close(errors_r)
        try:
            _exec(launch, stdin_fd, output_fd, errors_w)
        except _Failed as failure:
            _report(errors_w, failure.line())
        except BaseException as exc:
            _report(errors_w, _unexpected(exc))
        os._exit(127)
    os.close(errors_w)
    for fd in (pidfd, stdin_fd, output_fd):
        os.close(fd)  # only the job may hold them: EOF on its output must come
    _quiet_stdio()
    said = b""
    while chunk := _read(errors_r):
        said += chunk
    os.close(errors_r)
    _close_all_but(report_fd)  # the spawner's socket, say: only the job's are kept
    _report(report_fd, said.decode().strip() if said else "S")
    while True:
        received = signal.sigwaitinfo(every)
        if received.si_signo != signal.SIGCHLD:
            # Passed on to every process of the namespace but this one: the
            # whole job, however it daemonized.
            with contextlib.suppress(OSError):
                os.kill(-1, received.si_signo)
            continue
        while True:  # reap all that ended: SIGCHLDs coalesce
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)  # nothing of the job is left
            if pid == 0:
                break
            if pid == main:
                _report(report_fd, f"X{status}")


def _plain_fork() -> tuple[int, int]:
    """A fork without Python's fork hooks, as clone.clone3 gives."""
    try:
        return clone.clone3(0)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:  # else clone3 is filtered here
            raise
    return clone.clone_legacy(0)


def _close_all_but(keep: int) -> None:
    """Close every descriptor above 2 but ``keep``: the job inherits only
    its stdin and output (the spawner holds few, so listing them is cheap)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 256)
    except InterruptedError:
        return _read(fd)


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
