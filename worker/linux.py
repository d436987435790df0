"""The few Linux process controls the standard library does not offer."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
from collections.abc import Callable, Iterator

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Get ``sig`` when the parent dies; if it already has, send it now."""
    _prctl(_PR_SET_PDEATHSIG, sig)
    # The parent may have died before the request was in place.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


# The OOM killer picks processes by their score: jobs first, the server last.
JOB_OOM_SCORE_ADJ = 500
SERVER_OOM_SCORE_ADJ = -900


def oom_score_adj(value: int) -> bool:
    """Set this process's OOM score adjustment; False where refused (only
    root may lower it)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write(str(value))
    except OSError:
        return False
    return True


def not_dumpable() -> None:
    """No core dumps, and /proc/PID/mem, environ and ptrace closed to every
    other process without CAP_SYS_PTRACE, even one of our own uid."""
    _prctl(_PR_SET_DUMPABLE, 0)


@contextlib.contextmanager
def as_owner(uid: int, gid: int) -> Iterator[None]:
    """File access (this thread's only) with ``uid`` and ``gid``, as the
    owner of a process would read its /proc files; root needs no
    CAP_SYS_PTRACE for that."""
    libc = ctypes.CDLL(None, use_errno=True)
    old_gid = libc.setfsgid(ctypes.c_uint(gid))
    old_uid = libc.setfsuid(ctypes.c_uint(uid))
    try:
        yield
    finally:
        libc.setfsuid(ctypes.c_uint(old_uid))
        libc.setfsgid(ctypes.c_uint(old_gid))


def become_subreaper() -> bool:
    """Adopt orphaned descendants instead of init. False where refused."""
    try:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    return True


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return it.

    Each running job holds a few descriptors, so the usual soft limit of 1024
    would stop at a few hundred jobs.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A kernel file (procfs, cgroupfs) read whole: three or four system
    calls, where ``open()`` adds a stat, a terminal check and seeks, and a
    job's start and end read several such files."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, 65536)
        if not first:
            return first
        chunks = [first]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def direct_children(pid: int | None = None) -> list[int] | None:
    """PIDs of the children of process ``pid`` (this one by default), from
    /proc/PID/task/*/children (cheap: no scan of every process); None where
    the kernel lacks it or the process is gone."""
    where = "self" if pid is None else str(pid)
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{where}/task"):
            children.extend(map(int, read_file(f"/proc/{where}/task/{task}/children").split()))
    except OSError:
        return None
    return children


def exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it (it stays a zombie,
    so its PID cannot be reused yet)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # already reaped


def reap_exited(claim: Callable[[int], bool | None]) -> None:
    """Reap every child that has exited.

    Each is first offered to ``claim(pid)``: ``None`` means nobody owns it
    and it is reaped here; ``True`` that its owner reaped it (keeping the exit
    status for itself); ``False`` that the owner could not, so the loop stops
    rather than spin on it.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        claimed = claim(info.si_pid)
        if claimed is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, os.WNOHANG)
        elif not claimed:
            return
