"""The processes the benchmark starts: `worker serve`, the bare Sanic app,
one-off helpers in fresh interpreters, and a small blocking HTTPS client."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import CA, PASSWORD, ROOT, USER

T = TypeVar("T")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 90.0
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CA))


def run_isolated(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a fresh interpreter of its own (spawned), so it
    shares neither a GIL nor children with this process."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Https:
    """One keep-alive HTTPS connection as alice, trusting only certs/ca.pem.

    Made anew when it was idle for long (servers close idle connections) or
    after an error."""

    IDLE = 10.0

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=client_context(), timeout=120
        )
        self._used = time.monotonic()

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Reply:
        return self.request_as(AUTH, method, path, body, raw)

    def request_as(
        self, auth: str, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> Reply:
        """A request with ``auth`` (an Authorization header value) instead of alice's."""
        payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if time.monotonic() - self._used > self.IDLE:
            self._conn.close()  # it reconnects on the next request
        try:
            self._conn.request(method, path, body=payload, headers={"Authorization": auth})
            response = self._conn.getresponse()
            reply = Reply(response.status, response.read())
        except BaseException:
            self._conn.close()
            raise
        self._used = time.monotonic()
        return reply

    def run_job(self, command: str, *args: str) -> int:
        reply = self.request("POST", "/jobs/run", {"command": command, "args": list(args)})
        if reply.status != 201:
            raise RuntimeError(f"run {command} refused: {reply.status} {reply.body!r}")
        return int(reply.json()["id"])

    def status(self, job_id: int) -> dict[str, Any]:
        reply = self.request("GET", f"/jobs/{job_id}/status")
        if reply.status != 200:
            raise RuntimeError(f"status {job_id}: {reply.status} {reply.body!r}")
        return dict(reply.json())

    def wait_final(self, job_id: int, timeout: float = 120.0, poll: float = 0.01) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(job_id)
            if state["status"] != "running":
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} still running after {timeout} s")
            time.sleep(poll)

    def kill(self, job_id: int) -> Reply:
        return self.request("PUT", f"/jobs/{job_id}/kill")

    def close(self) -> None:
        self._conn.close()


@dataclass
class Server:
    """A process we started in a session of its own, stopped with SIGTERM."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    flags: list[str] = field(default_factory=list)
    api_pid: int = 0
    executor_pid: int = 0
    state_dir: Path | None = None  # its own, removed when it stops
    startup: str = ""  # what it printed when it was ready

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session we made
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.returncode == 0:
            self.log.unlink(missing_ok=True)  # kept when something went wrong
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def _start(name: str, argv: list[str], ready: re.Pattern[bytes]) -> tuple[Server, re.Match[bytes]]:
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in argv]
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,  # ours to clean up, and out of our Ctrl-C
        )
    server = Server(name, process, port, log, argv)
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    seen = b""
    deadline = time.monotonic() + START_TIMEOUT
    while (match := ready.search(seen)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(BlockingIOError):
            seen += process.stdout.read() or b""
        time.sleep(0.02)
    return server, match


def start_worker(*flags: str) -> Server:
    # A state directory of its own (never the host's /var/lib/worker), where
    # jobs can reach their directories (not under /tmp: each job has its own).
    state = Path(tempfile.mkdtemp(prefix="worker-bench-", dir="/var/tmp"))
    state.chmod(0o711)
    argv = [sys.executable, "-m", "worker", "serve", "--port", "{port}", *flags]
    argv += ["--state-dir", str(state)]
    pattern = re.compile(rb"api pid (\d+), executor pid (\d+)")
    server, match = _start("worker", argv, pattern)
    server.api_pid, server.executor_pid = int(match.group(1)), int(match.group(2))
    server.flags = list(flags)
    server.state_dir = state
    server.startup = bytes(match.string).decode(errors="replace").strip()
    return server


def start_sanic_baseline(body: dict[str, Any]) -> Server:
    """The bare Sanic HTTPS app answering every status with ``body``."""
    fd, path = tempfile.mkstemp(prefix="bench-status-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(body, file)
    argv = [sys.executable, "-m", "bench.sanic_baseline", "--port", "{port}", "--body", path]
    try:
        server, _ = _start("sanic-baseline", argv, re.compile(rb"ready"))
    finally:
        os.unlink(path)  # read at start
    server.api_pid = server.process.pid
    return server


def cli_command() -> list[str]:
    """The installed `worker` script next to this interpreter, else -m."""
    script = Path(sys.executable).parent / "worker"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "worker"]
