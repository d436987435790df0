"""Start the real `worker serve` on a free port and talk to it over HTTPS."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from worker.resources import DEMO_CA, demo_file

if TYPE_CHECKING:
    from worker.client import Client

CA = demo_file(DEMO_CA)

# A run started in the background of a script (`tox &`) inherits SIGINT
# ignored, and so would every CLI the tests start: the tests that press
# Ctrl-C need it as a terminal has it. (A handler is not inherited: the
# CLI starts with the default, and Python turns it into KeyboardInterrupt.)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Python for scripts that jobs run: the job's own (as root, jobs run as other
# uids, which cannot reach an interpreter under /root, where pyenv keeps one).
JOB_PYTHON = "python3"
# Test servers' state directories, one base per test run (removed at its end).
STATE_ROOT = Path("/var/tmp") / f"worker-tests-{os.getpid()}"
START_TIMEOUT = 30.0
USERS = {"alice": "wonderland", "bob": "builder"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    stderr_path: Path
    api_pid: int
    executor_pid: int
    extra_env: dict[str, str] = field(default_factory=dict)
    state_dir: Path | None = None
    ca: Path = CA  # the CA its certificate is signed by
    startup: str = ""  # the line it printed once it listened

    def home(self, user: str = "alice") -> Path:
        """The user's private directory: their jobs' working directory, and
        a place a test can put files for them (not /tmp: a job has its own)."""
        assert self.state_dir is not None, "a server started with start_server"
        home = self.state_dir / "users" / user
        assert home.is_dir(), home
        return home

    def give(self, name: str, data: bytes, user: str = "alice") -> Path:
        """A file of ``data`` in the user's directory, readable by their jobs."""
        path = self.home(user) / name
        path.write_bytes(data)
        path.chmod(0o644)
        return path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str | None = "alice",
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One HTTPS request that trusts only the shipped CA."""
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=30)
        sent = dict(headers or {})
        if user is not None:
            token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        payload = (
            raw_body
            if raw_body is not None
            else (None if body is None else json.dumps(body).encode())
        )
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()

    def client(self, user: str = "alice", **options: Any) -> Client:
        """A ``worker.client.Client`` of this server, as ``user`` (close it,
        or use it as a context manager)."""
        from worker.client import Client

        return Client(self.url, user=user, password=USERS[user], ca=self.ca, **options)

    def cli_env(self, user: str = "alice") -> dict[str, str]:
        """The environment of a CLI that talks to this server as ``user``."""
        return {
            **os.environ,
            "WORKER_URL": self.url,
            "WORKER_USER": user,
            "WORKER_PASSWORD": USERS[user],
            # Never the real client config (~/.config/worker): none at all.
            "XDG_CONFIG_HOME": str(STATE_ROOT / "no-client-config"),
            **self.extra_env,
        }

    def cli(
        self, *args: str, user: str = "alice", stdin: bytes | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "worker", *args],
            env=self.cli_env(user),
            input=stdin or b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def run_job(self, command: str, *args: str, user: str = "alice") -> int:
        reply = self.request(
            "POST", "/jobs/run", {"command": command, "args": list(args)}, user=user
        )
        assert reply.status == 201, reply.body
        return int(reply.json()["id"])

    def status(self, job_id: int, user: str = "alice") -> dict[str, Any]:
        reply = self.request("GET", f"/jobs/{job_id}/status", user=user)
        assert reply.status == 200, reply.body
        return dict(reply.json())

    def output(self, job_id: int, user: str = "alice") -> str:
        reply = self.request("GET", f"/jobs/{job_id}/out", user=user)
        assert reply.status == 200, reply.body
        return str(reply.json()["output"])

    def wait_for(
        self,
        job_id: int,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 20.0,
        user: str = "alice",
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(job_id, user=user)
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never matched; last status {state}")
            time.sleep(0.05)

    def wait_final(self, job_id: int, timeout: float = 20.0, user: str = "alice") -> dict[str, Any]:
        return self.wait_for(job_id, lambda s: s["status"] != "running", timeout, user)


def server_state(extra: tuple[str, ...] = ()) -> list[str]:
    """Flags that give a test's server a state directory and (as root) a
    block of uids of its own, so that no two servers on this host share
    them. The directory is not under /tmp, which each job sees a private
    one of, so that jobs can reach their own directories there."""
    flags = []
    if "--state-dir" not in extra:
        STATE_ROOT.mkdir(mode=0o711, exist_ok=True)
        flags += ["--state-dir", tempfile.mkdtemp(prefix="state-", dir=STATE_ROOT)]
    if "--uid-range" not in extra:
        first = 300_000 + random.randrange(20_000) * 100
        flags += ["--uid-range", f"{first}-{first + 99}"]
    return flags


def start_server(
    tmp_path: Path, *extra: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    stderr_path = tmp_path / f"serve-{port}.stderr"
    state = server_state(extra)
    with open(stderr_path, "wb") as stderr:
        command = [sys.executable, "-m", "worker", "serve", "--port", str(port)]
        process = subprocess.Popen(
            [*command, *state, *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,  # our own group, so teardown can reach every piece
        )
    seen = wait_listening(process, stderr_path)
    match = re.search(rb"api pid (\d+), executor pid (\d+)", seen)
    assert match, seen
    flags = [*state, *extra]
    return Server(
        process,
        port,
        f"https://127.0.0.1:{port}",
        stderr_path,
        int(match.group(1)),
        int(match.group(2)),
        state_dir=Path(flags[flags.index("--state-dir") + 1]),
        startup=seen.decode().strip(),
    )


def wait_listening(process: subprocess.Popen[bytes], stderr_path: Path) -> bytes:
    """Wait for `worker serve`'s "listening on" line; return what it printed."""
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    deadline = time.monotonic() + START_TIMEOUT
    seen = b""
    while b"listening on" not in seen:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(
                f"worker serve did not start: {seen!r} {stderr_path.read_text(errors='replace')}"
            )
        chunk = process.stdout.read(4096)
        if chunk:
            seen += chunk
        else:
            time.sleep(0.02)
    return seen


def stop_server(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this test made
            process.wait()
    if process.stdout:
        process.stdout.close()
    return process.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Most tests poll quickly; the rate limit has tests of its own.
    instance = start_server(
        tmp_path_factory.mktemp("serve"), "--kill-grace", "1", "--rate-limit-ms", "0"
    )
    yield instance
    stop_server(instance.process)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    instance = start_server(tmp_path, "--kill-grace", "1", "--rate-limit-ms", "0")
    yield instance
    stop_server(instance.process)


@pytest.fixture(scope="session", autouse=True)
def _remove_state_directories() -> Iterator[None]:
    yield
    shutil.rmtree(STATE_ROOT, ignore_errors=True)


def host_pid(server: Server, job_id: int, pid: int) -> int:
    """``pid`` as a job sees it, as this host sees it: in a job with a PID
    namespace of its own, the process of that job whose last NSpid is it."""
    main = server.status(job_id)["pid"]
    init = psutil.Process(main).parent()
    if init is None or init.name() != "worker-init":
        return pid  # no namespace of its own: the PID is the host's
    for process in init.children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError):
            status = Path(f"/proc/{process.pid}/status").read_text()
            ns_pids = next(line for line in status.splitlines() if line.startswith("NSpid:"))
            if int(ns_pids.split()[-1]) == pid:
                return process.pid
    raise AssertionError(f"no process of job {job_id} has PID {pid} in its namespace")
