"""The real image, used as a user would: the project's Dockerfile built on a
local Debian 12 base (no registry needed: see dockerhost.py), then driven
only through `docker run`, `docker exec`, `docker stop` and `docker inspect`.

Root only. Skipped when this host cannot provision Docker, unless
WORKER_REQUIRE_CONTAINER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import psutil
import pytest

from tests.integration.dockerhost import (
    REPO,
    DockerHost,
    Unavailable,
    build_context,
    build_image,
    ensure_base_image,
    provision,
    until,
)
from worker.executor.launcher import native_spawner

# The first run of a fresh machine installs packages and debootstraps the base
# image inside the first test's setup; pytest's usual 120 s cannot cover that.
pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(3600)]

T = TypeVar("T")

# The server runs as root (to give each user's jobs a uid of their own); jobs
# run as uids allocated from this range (see worker/executor/identity.py).
JOB_UIDS = range(61184, 65520)
HEALTHY_TIMEOUT = 60.0
JOB_TIMEOUT = 30.0
STOP_GRACE = 20  # docker stop -t: SIGKILL only after this long
STOP_WITHIN = 15.0  # what a clean stop must take at most

# Every process of the container as JSON, read from /proc by the container's
# own python3 (the exec'd interpreter leaves itself out).
PROCESSES = r"""
import json, os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace").split("\0")[:-1]
        with open(f"/proc/{pid}/status") as f:
            uid = next(int(l.split()[2]) for l in f if l.startswith("Uid:"))
    except (OSError, StopIteration):
        continue
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    found.append({"pid": int(pid), "ppid": int(ppid), "state": state, "uid": uid,
                  "cmdline": cmdline})
print(json.dumps(found))
"""


def zombie(process: dict[str, Any]) -> bool:
    """A zombie that the container must reap: its parent is in the container
    (a `docker exec` process's parent is outside: its PPid reads 0)."""
    return bool(process["state"] == "Z" and process["ppid"] != 0)


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("WORKER_REQUIRE_CONTAINER") == "1":
        pytest.fail(f"WORKER_REQUIRE_CONTAINER=1, but: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Container:
    """One container this run started, and the user's view of it."""

    docker: DockerHost
    name: str

    def exec(self, *args: str, timeout: float = 60.0) -> bytes:
        """`docker exec NAME ARGS...`; its stdout (a pipe, as in a script)."""
        return self.docker("exec", self.name, *args, timeout=timeout).stdout

    def worker(self, *args: str) -> str:
        return self.exec("worker", *args).decode()

    def run_job(self, *command: str) -> int:
        printed = self.worker("run", *command)
        assert re.fullmatch(r"\d+\n", printed), printed  # piped stdout: the ID alone
        return int(printed)

    def status(self, job_id: int) -> dict[str, Any]:
        return dict(json.loads(self.worker("--json", "status", str(job_id))))

    def wait_final(self, job_id: int) -> dict[str, Any]:
        return until(
            lambda: (s := self.status(job_id))["status"] != "running" and s,
            JOB_TIMEOUT,
            f"job {job_id} to end",
            interval=0.2,
        )

    def processes(self) -> list[dict[str, Any]]:
        return list(json.loads(self.exec("python3", "-c", PROCESSES)))

    def inspect(self, template: str) -> str:
        return self.docker.text("inspect", "--format", template, self.name)

    def logs(self) -> str:
        result = self.docker("logs", self.name, check=False)
        return (result.stdout + result.stderr).decode(errors="replace")

    def host_processes(self) -> dict[int, float]:
        """Host PID -> start time of every process in the container's PID
        namespace (what `docker top` lists, and anything it could miss)."""
        init = int(self.inspect("{{.State.Pid}}"))
        namespace = os.readlink(f"/proc/{init}/ns/pid")
        found: dict[int, float] = {}
        for process in psutil.process_iter(["create_time"]):
            try:
                if os.readlink(f"/proc/{process.pid}/ns/pid") == namespace:
                    found[process.pid] = process.info["create_time"]
            except OSError:
                continue
        top = self.docker("top", self.name, "-eo", "pid", check=False)
        for line in top.stdout.decode().split()[1:] if top.returncode == 0 else []:
            pid = int(line)
            try:
                found.setdefault(pid, psutil.Process(pid).create_time())
            except psutil.NoSuchProcess:
                continue
        return found


def start_container(docker: DockerHost, image: str) -> Container:
    """`docker run -d` a new container of ``image`` and wait until its
    HEALTHCHECK (probed every second here) says healthy."""
    container = Container(docker, f"worker-test-{uuid.uuid4().hex[:12]}")
    docker("run", "--detach", "--name", container.name, "--health-interval=1s", image)

    def healthy() -> bool:
        state = json.loads(container.inspect("{{json .State}}"))
        assert state["Running"], f"the container stopped:\n{container.logs()}"
        assert state["Health"]["Status"] != "unhealthy", f"{state['Health']}\n{container.logs()}"
        return bool(state["Health"]["Status"] == "healthy")

    try:
        until(healthy, HEALTHY_TIMEOUT, f"{container.name} to be healthy", interval=0.2)
    except BaseException:
        remove(container)
        raise
    return container


def remove(container: Container) -> None:
    container.docker("rm", "--force", "--volumes", container.name, check=False)


def provisioned(step: Callable[[], T]) -> T:
    """``step()``, or a skip (a failure under WORKER_REQUIRE_CONTAINER=1)
    naming why this host cannot do it."""
    try:
        return step()
    except Unavailable as error:
        reason = str(error)
    unavailable(reason)


@pytest.fixture(scope="session")
def docker_host(request: pytest.FixtureRequest) -> Iterator[DockerHost]:
    host = provisioned(provision)
    yield host
    host.close()
    # What was reused, built or started, and how long it took: for CI logs.
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for note in host.notes:
                reporter.write_line(f"container test: {note}")


@pytest.fixture(scope="session")
def version() -> str:
    with open(REPO / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


@pytest.fixture(scope="session")
def image(
    docker_host: DockerHost, version: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The project's image, built once per run from wheels made here."""
    base = provisioned(lambda: ensure_base_image(docker_host))
    started = time.monotonic()
    context = provisioned(lambda: build_context(tmp_path_factory.mktemp("docker")))
    docker_host.notes.append(f"wheels: built in {time.monotonic() - started:.0f} s")
    tag = f"worker-test:{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    build_image(docker_host, context, base, tag, version)
    docker_host.notes.append(f"image {tag}: built in {time.monotonic() - started:.0f} s")
    yield tag
    docker_host("rmi", tag, check=False)


@pytest.fixture(scope="module")
def container(docker_host: DockerHost, image: str) -> Iterator[Container]:
    """One running container shared by the tests that do not stop it."""
    instance = start_container(docker_host, image)
    yield instance
    remove(instance)


def test_image_is_labelled_and_runs_a_checked_server(
    docker_host: DockerHost, image: str, version: str
) -> None:
    config = json.loads(docker_host.text("image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] in ("", "root")  # it gives each user's jobs their own uid
    assert config["Entrypoint"] == ["worker"]
    assert config["Cmd"] == ["serve"]
    assert config["Healthcheck"]["Test"] == ["CMD", "worker", "health"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "worker"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.description"]
    assert "org.opencontainers.image.source" in labels


def test_serve_is_pid_1_and_says_what_isolation_it_has(container: Container) -> None:
    assert container.worker("health") == "ok\n"
    processes = {p["pid"]: p for p in container.processes()}
    init = processes[1]
    assert init["cmdline"][-1] == "serve" and init["cmdline"][-2].endswith("/worker"), init
    # The supervisor, its API and executor processes, the spawner (and
    # multiprocessing's resource tracker): root's, none a job's.
    assert len(processes) >= 4, processes
    assert {p["uid"] for p in processes.values()} == {0}, processes
    # Docker's default capabilities let it switch uids but not make
    # namespaces, and it says so rather than pretend.
    line = next(line for line in container.logs().splitlines() if "listening on" in line)
    assert "jobs: a uid per user" in line and "no PID and mount namespaces" in line, line
    # The wheels were made here, so the image has a compiled spawner where
    # this checkout's install does (it is static: the image's libc is moot).
    compiled = native_spawner() is not None
    assert line.endswith("jobs started by the compiled spawner") == compiled, line


def test_run_then_out(container: Container) -> None:
    job = container.run_job("echo", "hello")
    final = container.wait_final(job)
    assert (final["status"], final["exit_code"]) == ("completed", 0), final
    assert container.exec("worker", "out", str(job)) == b"hello\n"
    assert "status: completed" in container.worker("status", str(job)).splitlines()
    # Jobs run as their user's own uid, not root.
    job = container.run_job("id", "-u")
    assert container.wait_final(job)["status"] == "completed"
    assert int(container.worker("out", str(job))) in JOB_UIDS


def test_a_daemon_a_job_forked_is_stopped_when_the_job_ends(container: Container) -> None:
    job = container.run_job("sh", "-c", "setsid sleep 4242 >/dev/null 2>&1 </dev/null & echo $!")
    final = container.wait_final(job)
    assert (final["status"], final["exit_code"]) == ("completed", 0), final
    daemon = int(container.worker("out", str(job)))  # it did start: here is its PID

    def daemon_gone() -> bool:
        processes = container.processes()
        return not any(
            p["pid"] == daemon or p["cmdline"] == ["sleep", "4242"] or zombie(p) for p in processes
        )

    until(daemon_gone, 15, "the daemon to be stopped and reaped", interval=0.2)


def test_pid_1_reaps_orphans(container: Container) -> None:
    # `docker exec` processes are not the server's descendants: what they
    # leave behind is reparented to the container's init, `worker serve`.
    printed = container.exec(
        "sh", "-c", "for i in 1 2 3 4 5; do sleep 3 >/dev/null 2>&1 </dev/null & echo $!; done"
    )
    orphans = {int(pid) for pid in printed.split()}
    assert len(orphans) == 5
    seen = [p for p in container.processes() if p["pid"] in orphans]
    assert [p["ppid"] for p in seen] == [1] * 5, seen

    def reaped() -> bool:
        processes = container.processes()
        return not any(p["pid"] in orphans or zombie(p) for p in processes)

    until(reaped, 15, "the orphans to exit and be reaped", interval=0.2)


def test_docker_stop_ends_jobs_and_exits_0_within_the_grace(
    docker_host: DockerHost, image: str
) -> None:
    container = start_container(docker_host, image)
    try:
        jobs = [
            container.run_job("sleep", "1000"),
            container.run_job("sh", "-c", "sleep 1000 & wait"),
        ]
        for job in jobs:
            assert container.status(job)["status"] == "running"
        until(
            lambda: sum(p["cmdline"] == ["sleep", "1000"] for p in container.processes()) == 2,
            15,
            "both jobs' sleeps to start",
        )
        on_host = container.host_processes()
        commands = []
        for pid in on_host:
            try:
                commands.append(psutil.Process(pid).cmdline())
            except psutil.NoSuchProcess:
                continue
        assert commands.count(["sleep", "1000"]) == 2, commands

        started = time.monotonic()
        docker_host("stop", "--time", str(STOP_GRACE), container.name, timeout=STOP_GRACE + 30)
        took = time.monotonic() - started
        docker_host.notes.append(f"docker stop with 2 jobs running: {took:.2f} s")
        logs = container.logs()
        assert took < STOP_WITHIN, f"docker stop took {took:.1f} s\n{logs}"
        state = json.loads(container.inspect("{{json .State}}"))
        assert (state["Running"], state["ExitCode"], state["OOMKilled"]) == (False, 0, False), (
            f"{state}\n{logs}"
        )
        assert "Traceback" not in logs, logs

        def left() -> list[int]:
            alive = []
            for pid, created in on_host.items():
                try:
                    if psutil.Process(pid).create_time() == created:
                        alive.append(pid)
                except psutil.NoSuchProcess:
                    continue
            return alive

        assert not left(), f"still on the host after docker stop: {left()}"
    finally:
        remove(container)


def test_provisioning_failures_skip_or_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WORKER_REQUIRE_CONTAINER=1 a host that cannot run this is a
    skip; with it (CI), the same reason is a failure."""
    monkeypatch.delenv("WORKER_REQUIRE_CONTAINER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no dockerd"):
        unavailable("no dockerd")
    monkeypatch.setenv("WORKER_REQUIRE_CONTAINER", "1")
    with pytest.raises(pytest.fail.Exception, match="WORKER_REQUIRE_CONTAINER=1, but: no dockerd"):
        unavailable("no dockerd")
