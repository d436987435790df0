"""Isolation between users, for real, as root: bob's jobs attack alice's job
and the server, and every attempt fails while everything keeps running.

Each attack runs twice: with PID and mount namespaces (the default, where
alice's processes are not even visible to bob), and without them, where the
uid of each user's jobs alone must stop it. Skipped where not root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import (
    JOB_PYTHON,
    STATE_ROOT,
    USERS,
    Server,
    start_server,
    stop_server,
)
from worker.executor import cgroups

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="uids per user and namespaces need root"),
]

SECRET = "s3cret-token-of-alice"


@dataclass
class Scene:
    server: Server
    alice_job: int
    alice_pid: int  # as this host sees it
    key: Path
    users: Path
    namespaces: bool


def _own_secrets() -> tuple[Path, Path, Path]:
    """A key, certificate and users file of the test's own, made by the CLI
    (mode 0600), in a directory any uid may pass through."""
    STATE_ROOT.mkdir(mode=0o711, exist_ok=True)
    where = Path(tempfile.mkdtemp(prefix="secrets-", dir=STATE_ROOT))
    where.chmod(0o755)
    worker = [sys.executable, "-m", "worker"]
    subprocess.run([*worker, "certs", str(where)], check=True, capture_output=True, timeout=60)
    users = where / "users"
    for name, password in USERS.items():
        subprocess.run(
            [*worker, "users", "add", name, "--users", str(users), "--password-stdin"],
            input=f"{password}\n".encode(),
            check=True,
            capture_output=True,
            timeout=60,
        )
    return where / "ca.pem", where / "server-key.pem", users


@pytest.fixture(scope="module", params=["namespaces", "uids only"])
def scene(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    ca, key, users = _own_secrets()
    flags = ["--rate-limit-ms", "0", "--kill-grace", "1", "--users", str(users)]
    flags += ["--cert", str(key.parent / "server.pem"), "--key", str(key)]
    if request.param != "namespaces":
        flags.append("--no-namespaces")
    server = start_server(tmp_path_factory.mktemp("isolation"), *flags)
    server.ca = ca
    server.extra_env = {"WORKER_CA": str(ca)}
    try:
        reply = server.request(
            "POST",
            "/jobs/run",
            {
                "command": "sh",
                "args": ["-c", "echo ready; exec sleep 300"],
                "env": {"SECRET_TOKEN": SECRET},
            },
        )
        job = int(reply.json()["id"])
        server.wait_for(job, lambda s: s["pid"] is not None)
        yield Scene(
            server, job, server.status(job)["pid"], key, users, request.param == "namespaces"
        )
    finally:
        stop_server(server.process)


def attack(scene: Scene, script: str) -> tuple[str, str]:
    """Run ``script`` (sh) as bob; his job's status and output."""
    job = scene.server.run_job("sh", "-c", script, user="bob")
    state = scene.server.wait_final(job, user="bob")
    return state["status"], scene.server.output(job, user="bob")


def still_fine(scene: Scene) -> None:
    """Alice's job runs untouched, and so does the whole server."""
    state = scene.server.status(scene.alice_job)
    assert state["status"] == "running", state
    assert scene.server.output(scene.alice_job) == "ready\n"
    assert psutil.pid_exists(scene.alice_pid)
    for pid in (scene.server.process.pid, scene.server.api_pid, scene.server.executor_pid):
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert scene.server.request("GET", "/health", user=None).status == 200


def refused(output: str) -> bool:
    return any(
        word in output
        for word in (
            "Permission denied",
            "No such file",
            "No such process",
            "Operation not permitted",
            "Directory nonexistent",
        )
    )


def test_jobs_run_as_a_uid_of_their_users_own_with_no_groups(scene: Scene) -> None:
    alice = scene.server.status(scene.alice_job)["isolation"]
    status, out = attack(scene, "id -u; id -g; id -G")
    bob = scene.server.status(scene.server.run_job("true", user="bob"), user="bob")["isolation"]
    uid, gid, groups = out.split("\n")[:3]
    assert status == "completed"
    assert int(uid) == bob["uid"] != alice["uid"]
    assert int(uid) not in (0, os.geteuid())
    assert groups == gid  # no supplementary group
    assert psutil.Process(scene.alice_pid).uids().real == alice["uid"]
    assert alice["pid_namespace"] is scene.namespaces


def test_bob_cannot_read_alices_environment(scene: Scene) -> None:
    status, out = attack(scene, f"cat /proc/{scene.alice_pid}/environ")
    assert status == "failed" and refused(out), out
    assert SECRET not in out
    still_fine(scene)


def test_bob_cannot_read_the_executors_memory(scene: Scene) -> None:
    script = (
        f"{JOB_PYTHON} -c \"f = open('/proc/{scene.server.executor_pid}/mem', 'rb'); "
        'print(f.read(16))"'
    )
    status, out = attack(scene, script)
    assert status == "failed" and ("PermissionError" in out or "FileNotFoundError" in out), out
    still_fine(scene)


def test_bob_cannot_write_alices_stdin_or_kill_her_job(scene: Scene) -> None:
    status, out = attack(scene, f"echo injected > /proc/{scene.alice_pid}/fd/0")
    assert status == "failed" and refused(out), out
    status, out = attack(scene, f"kill -9 {scene.alice_pid}")
    assert status == "failed" and refused(out), out
    still_fine(scene)


def test_bob_cannot_kill_the_server(scene: Scene) -> None:
    server = scene.server
    for pid in (server.executor_pid, server.api_pid, server.process.pid):
        status, out = attack(scene, f"kill -9 {pid}")
        assert status == "failed" and refused(out), (pid, out)
    still_fine(scene)


def test_bob_cannot_read_the_key_or_the_users_file(scene: Scene) -> None:
    for secret in (scene.key, scene.users):
        status, out = attack(scene, f"cat {secret}")
        assert status == "failed" and "Permission denied" in out, out
    status, out = attack(scene, f"ls {scene.server.state_dir}")
    assert status == "failed" and "Permission denied" in out, out
    status, out = attack(scene, f"ls {scene.server.home('alice')}")
    assert status == "failed" and "Permission denied" in out, out
    still_fine(scene)


def test_bob_cannot_leave_his_cgroup(scene: Scene) -> None:
    where = cgroups.home()
    if where is None:
        pytest.skip("no cgroup v2 hierarchy here")
    for target in (where, where.parent if where != where.parent else where):
        status, out = attack(scene, f"set -e; echo $$ > {target}/cgroup.procs; echo moved")
        assert status == "failed" and refused(out) and "moved" not in out, out
    still_fine(scene)


def test_bob_sees_only_his_own_processes(scene: Scene) -> None:
    status, out = attack(scene, "ps -e -o pid=,comm=")
    assert status == "completed"
    seen = {int(line.split()[0]) for line in out.splitlines()}
    if scene.namespaces:
        assert scene.alice_pid not in seen and len(seen) <= 3  # init, sh, ps
    else:
        pytest.skip("without a PID namespace every process is listed (they stay untouchable)")


def test_a_job_without_network_cannot_reach_the_server(scene: Scene) -> None:
    script = (
        f"import socket; socket.create_connection(('127.0.0.1', {scene.server.port}), timeout=5)"
    )
    for network, expected in (("none", "failed"), ("host", "completed")):
        reply = scene.server.request(
            "POST",
            "/jobs/run",
            {"command": JOB_PYTHON, "args": ["-c", script], "network": network},
            user="bob",
        )
        assert reply.status == 201, reply.body
        job = int(reply.json()["id"])
        state = scene.server.wait_final(job, user="bob")
        assert state["status"] == expected, scene.server.output(job, user="bob")
        assert state["isolation"]["network"] == network
    still_fine(scene)


def test_a_job_starts_in_its_users_directory_with_its_own_tmp(scene: Scene) -> None:
    status, out = attack(scene, 'pwd; echo "$HOME"')
    home = str(scene.server.home("bob"))
    assert status == "completed" and out.splitlines() == [home, home]
    if not scene.namespaces:
        return
    marker = f"worker-test-private-{os.getpid()}"
    status, out = attack(scene, f"ls -A /tmp | wc -l; touch /tmp/{marker} && echo made")
    assert status == "completed" and out.split() == ["0", "made"], out  # empty, its own
    assert not (Path("/tmp") / marker).exists()
