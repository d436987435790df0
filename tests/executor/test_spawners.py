"""Both spawners, the compiled one (spawn.c) and the Python one (spawner.py),
held to the same behaviour: real job processes started through each, with
every step of a start seen from inside the job."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.executor import launcher, spawnwire
from worker.executor.cgroups import CgroupTree, v2_mount
from worker.executor.jobinit import Launch
from worker.executor.launcher import Spawner, native_spawner, spawner_process

ROOT = os.geteuid() == 0
PATH = ((b"PATH", b"/usr/bin:/bin"),)
NOBODY = 65534


@pytest.fixture(params=["compiled", "python"])
def native(request: pytest.FixtureRequest) -> bool:
    if request.param == "python":
        return False
    if native_spawner() is None:
        if os.environ.get("CI"):  # CI installs with a C compiler: it must be there
            pytest.fail("the compiled spawner was not built")
        pytest.skip("the compiled spawner was not built here (no C compiler at install)")
    return True


@dataclass
class Ran:
    output: bytes
    report: str
    status: int


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def run(
    native: bool,
    launch: Launch,
    stdin: bytes = b"",
    cgroup: Path | None = None,
    then: object = None,
    no_clone3: bool = False,
) -> Ran:
    """Start ``launch`` through a fresh spawner (with ``no_clone3``, one
    where clone3 fails as a container runtime's seccomp profile can make
    it), feed it ``stdin``, and collect all it wrote, all it reported and
    its exit status (ours to reap: the spawner's clones are its parent's,
    here this process's)."""

    async def start() -> tuple[int, int]:
        spawner = _without_clone3(native) if no_clone3 else Spawner.start(native)
        assert spawner.native is native
        cgroup_fd = None if cgroup is None else os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return await spawner.launch(launch, [stdin_r, out_w, report_w], cgroup_fd)
        finally:
            spawner.close()
            if cgroup_fd is not None:
                os.close(cgroup_fd)

    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, pidfd = asyncio.run(start())
    finally:
        for fd in (stdin_r, out_w, report_w):
            os.close(fd)
    os.close(pidfd)
    with contextlib.suppress(BrokenPipeError):
        os.write(stdin_w, stdin)
    os.close(stdin_w)
    if callable(then):
        then(pid, out_r)
    output = _read_all(out_r)
    report = _read_all(report_r).decode()
    os.close(out_r)
    os.close(report_r)
    _, status = os.waitpid(pid, 0)
    return Ran(output, report, status)


# Installs a seccomp filter that fails clone3 with ENOSYS, checks that it
# does, and becomes the spawner.
NO_CLONE3 = """
import ctypes, errno, os, struct, sys
code = [(0x20, 0, 0, 0), (0x15, 0, 1, 435), (0x06, 0, 0, 0x00050000 | errno.ENOSYS),
        (0x06, 0, 0, 0x7FFF0000)]
program = b"".join(struct.pack("HBBI", *op) for op in code)
buffer = ctypes.create_string_buffer(program)
fprog = struct.pack("HxxxxxxP", len(code), ctypes.addressof(buffer))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0, ctypes.get_errno()
assert libc.syscall(435, None, 0) == -1 and ctypes.get_errno() == errno.ENOSYS
os.execv(sys.argv[1], sys.argv[1:])
"""


def _without_clone3(native: bool) -> Spawner:
    return Spawner.start(native, under=(sys.executable, "-c", NO_CLONE3))


def sh(script: str, **how: object) -> Launch:
    return Launch((b"sh", b"-c", script.encode()), PATH, b"/", None, None, **how)  # type: ignore[arg-type]


def test_output_is_exactly_what_the_job_wrote_with_its_stdin(native: bool) -> None:
    ran = run(native, sh("cat; printf 'to stderr' >&2"), stdin=b"in\x00put\n")
    assert ran.output == b"in\x00put\nto stderr"
    assert ran.report == ""  # the report pipe closed on exec: started
    assert os.waitstatus_to_exitcode(ran.status) == 0


def test_the_job_holds_only_its_stdio_and_starts_with_default_signals(native: bool) -> None:
    def own(*argv: bytes) -> str:  # the command reads its own state, as exec left it
        return run(native, Launch(argv, PATH, b"/", None, None)).output.decode()

    assert own(b"ls", b"/proc/self/fd").split() == ["0", "1", "2", "3"]  # 3: ls's listing
    status = dict(line.split(":\t", 1) for line in own(b"cat", b"/proc/self/status").splitlines())
    assert (status["SigBlk"], status["SigIgn"]) == ("0" * 16, "0" * 16)
    assert own(b"cat", b"/proc/self/oom_score_adj") == "500\n"


def test_the_environment_and_working_directory_are_the_requested_ones(
    native: bool, tmp_path: Path
) -> None:
    env = (*PATH, (b"ODD", b"a=b c\xff"))
    launch = Launch((b"sh", b"-c", b'pwd; printf "%s" "$ODD"'), env, bytes(tmp_path), None, None)
    assert run(native, launch).output == bytes(tmp_path) + b"\na=b c\xff"


@pytest.mark.parametrize("init", [False, True], ids=["direct", "under its init"])
def test_what_cannot_start_is_reported_with_its_phase(native: bool, init: bool) -> None:
    how = {"pid_namespace": True} if init else {}
    if init and not ROOT:
        pytest.skip("a PID namespace needs root")
    missing = run(native, Launch((b"no-such-command-here",), PATH, b"/", None, None, **how))
    nowhere = run(native, Launch((b"true",), PATH, b"/no/such/dir", None, None, **how))
    assert missing.report.splitlines()[0] == "E2 exec"
    assert nowhere.report.splitlines()[0] == "E2 cwd"
    if init:  # and then the command's exit, as for any job under an init
        assert missing.report.splitlines()[1:] == ["X32512"]


def test_a_request_longer_than_a_message_travels_in_a_memfd(native: bool) -> None:
    args = [b"x" * 1024] * 100  # 100 KiB: over spawnwire.MAX_MESSAGE
    launch = Launch((b"sh", b"-c", b'echo "$#"', b"sh", *args), PATH, b"/", None, None)
    assert len(spawnwire.encode_launch(1, launch)) > spawnwire.MAX_MESSAGE
    assert run(native, launch).output == b"100\n"


def test_a_denied_command_earlier_in_the_path_beats_a_later_miss(
    native: bool, tmp_path: Path
) -> None:
    denied = tmp_path / "tool"
    denied.write_text("#!/bin/sh\n")
    denied.chmod(stat.S_IRUSR)  # not executable, even for root
    path = f"{tmp_path}:/no/such/dir".encode()
    ran = run(native, Launch((b"tool",), ((b"PATH", path),), b"/", None, None))
    assert ran.report == "E13 exec\n"


@pytest.mark.skipif(not ROOT, reason="switching uids needs root")
def test_the_job_runs_as_its_uid_with_no_groups(native: bool) -> None:
    launch = Launch((b"sh", b"-c", b"id -u; id -g; id -G"), PATH, b"/", NOBODY, NOBODY)
    assert run(native, launch).output.decode().split() == [str(NOBODY)] * 3


@pytest.mark.skipif(not ROOT, reason="namespaces need root")
def test_under_its_init_it_sees_its_own_pids_proc_and_tmp(native: bool) -> None:
    script = "echo $$; cat /proc/1/comm; ls -A /tmp | wc -l; exit 7"
    launch = sh(script, pid_namespace=True, mount_namespace=True)
    ran = run(native, launch)
    assert ran.output.decode().split() == ["2", "worker-init", "0"]
    assert ran.report == f"S\nX{7 << 8}\n"  # started, then the command's exit
    assert os.waitstatus_to_exitcode(ran.status) == 0  # the init's own


@pytest.mark.skipif(not ROOT, reason="namespaces need root")
def test_under_its_init_where_clone3_is_refused(native: bool, cgroup: Path) -> None:
    launch = sh("echo $$; cat /proc/self/cgroup", pid_namespace=True, mount_namespace=True)
    ran = run(native, launch, cgroup=cgroup, no_clone3=True)
    mount = v2_mount()
    assert mount is not None
    pid, *cgroups = ran.output.decode().splitlines()
    assert (pid, ran.report) == ("2", "S\nX0\n")
    assert f"0::/{cgroup.relative_to(mount)}" in cgroups


@pytest.mark.skipif(not ROOT, reason="namespaces need root")
def test_the_init_passes_a_signal_on_to_the_whole_job(native: bool) -> None:
    script = 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done'

    def terminate(pid: int, out_r: int) -> None:
        seen = b""
        while b"ready\n" not in seen:
            seen += os.read(out_r, 100)
        os.kill(pid, signal.SIGTERM)  # the init: our own child

    ran = run(native, sh(script, pid_namespace=True, mount_namespace=True), then=terminate)
    assert ran.output.endswith(b"got TERM\n")
    assert ran.report == f"S\nX{3 << 8}\n"


@pytest.fixture
def cgroup(tree: CgroupTree) -> Iterator[Path]:
    made = tree.create(1)
    yield made.path
    made.kill()
    made.remove()


@pytest.mark.parametrize("how", ["born in it", "joins it", "joins it: clone3 refused"])
def test_the_job_is_in_its_cgroup_before_it_runs(native: bool, cgroup: Path, how: str) -> None:
    if how == "born in it":
        ran = run(native, sh("cat /proc/self/cgroup"), cgroup=cgroup)
    elif how == "joins it: clone3 refused":  # the spawner falls back to clone
        ran = run(native, sh("cat /proc/self/cgroup"), cgroup=cgroup, no_clone3=True)
    else:
        launch = Launch(
            (b"cat", b"/proc/self/cgroup"),
            PATH,
            b"/",
            None,
            None,
            join=(bytes(cgroup / "cgroup.procs"),),
        )
        ran = run(native, launch)
    mount = v2_mount()
    assert mount is not None
    assert f"0::/{cgroup.relative_to(mount)}" in ran.output.decode().splitlines()


def test_a_malformed_request_is_refused_and_the_spawner_serves_on(native: bool) -> None:
    process, ours, _ = spawner_process(native)
    try:
        ours.settimeout(30)
        null = os.open(os.devnull, os.O_RDONLY)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, null.to_bytes(4, "little") * 4)]
        for bad, said_id in ((b"x" * 3, 0), (b"\x07\x00\x00\x00" + b"\xff" * 40, 7)):
            ours.sendmsg([bad], rights)
            request_id, pid, message = spawnwire.decode_reply(ours.recv(4096))
            assert pid == -22 and message.startswith("bad launch request"), message
            assert request_id == said_id  # the refusal finds its request
        good = spawnwire.encode_launch(9, Launch((b"true",), PATH, b"/", None, None))
        ours.sendmsg([good], rights)
        data, ancillary, _, _ = ours.recvmsg(4096, socket.CMSG_SPACE(4))
        request_id, pid, message = spawnwire.decode_reply(data)
        assert (request_id, message) == (9, "") and pid > 0
        for _, _, raw in ancillary:
            for fd in spawnwire.fds_of(raw):
                os.close(fd)
        os.waitpid(pid, 0)  # ours: the spawner's clones are its parent's
        os.close(null)
    finally:
        ours.close()  # it exits on EOF
        assert process.wait(30) == 0


def test_a_checkout_never_borrows_a_spawner_built_from_other_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A checkout with no compiled spawner of its own may use an installed
    # one only if it was compiled from the very same spawn.c.
    (tmp_path / "spawn.c").write_bytes(launcher.NATIVE.with_name("spawn.c").read_bytes() + b"\n")
    monkeypatch.setattr(launcher, "NATIVE", tmp_path / "worker-spawn")
    assert launcher.native_spawner() is None
