"""clone3 and mount, which the standard library does not offer.

``clone3`` makes a child the way ``fork`` does, but with what a job needs
from birth: already in its cgroup (``CLONE_INTO_CGROUP``), in new PID,
mount and network namespaces, parented to our own parent
(``CLONE_PARENT``: the spawner's children are the executor's), with a
pidfd. The child then runs Python (a copy of the caller) until it execs, as
after ``os.fork``; the caller must therefore be single-threaded.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_PARENT = 0x00008000
CLONE_PIDFD = 0x00001000
CLONE_INTO_CGROUP = 0x200000000

_SYS_CLONE3 = 435  # x86_64, aarch64 and every other 64-bit Linux (asm-generic)
# The older clone, for where clone3 is filtered (some container runtimes'
# seccomp profiles answer ENOSYS): its number and argument order differ.
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_PRIVATE = 1 << 18

# PyDLL: the GIL stays held across the call, so the child, a copy of this
# thread, resumes holding it, exactly as the parent does.
_libc = ctypes.PyDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]


class _CloneArgs(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "flags",
            "pidfd",
            "child_tid",
            "parent_tid",
            "exit_signal",
            "stack",
            "stack_size",
            "tls",
            "set_tid",
            "set_tid_size",
            "cgroup",
        )
    ]


def clone3(flags: int, cgroup_fd: int = -1) -> tuple[int, int]:
    """``(pid, pidfd)`` in the parent, ``(0, -1)`` in the child. With
    ``cgroup_fd`` (a v2 cgroup directory) the child is born in that cgroup.
    Raises OSError (ENOSYS where clone3 is missing or filtered)."""
    pidfd = ctypes.c_int(-1)
    if cgroup_fd >= 0:
        flags |= CLONE_INTO_CGROUP
    args = _CloneArgs(
        flags=flags | CLONE_PIDFD,
        pidfd=ctypes.addressof(pidfd),
        # With CLONE_PARENT the kernel takes the exit signal from us (the
        # spawner's own: SIGCHLD) and refuses any other.
        exit_signal=0 if flags & CLONE_PARENT else signal.SIGCHLD,
        cgroup=max(cgroup_fd, 0),
    )
    pid = _libc.syscall(_SYS_CLONE3, ctypes.byref(args), ctypes.sizeof(args))
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return (pid, pidfd.value) if pid else (0, -1)


def clone_legacy(flags: int) -> tuple[int, int]:
    """``clone3`` without a cgroup to be born in, through the older system
    call; the child must then join its cgroup itself."""
    if _SYS_CLONE is None:
        raise OSError(errno.ENOSYS, f"no clone fallback for {platform.machine()}")
    pidfd = ctypes.c_int(-1)
    flags |= CLONE_PIDFD | signal.SIGCHLD
    # (flags, stack, parent_tid, ...): the pidfd goes where parent_tid would;
    # the last two (child_tid and tls, in an order that differs by
    # architecture) are unused.
    pid = _libc.syscall(_SYS_CLONE, ctypes.c_ulong(flags), None, ctypes.byref(pidfd), None, None)
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return (pid, pidfd.value) if pid else (0, -1)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    if _libc.mount(raw(source), raw(target), raw(fstype), flags, raw(data)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)
