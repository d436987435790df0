"""Provision a Docker host for the container test, and drive `docker` from it.

Everything here runs on the host, as root:

- `docker.io` and `debootstrap` are installed through apt when missing;
- `dockerd` is started in the background when `docker info` fails, and left
  running (another test run may be using it by then: no run can tell);
- a Debian 12 base image (`debootstrap --variant=minbase` with python3 and
  python3-venv, then `docker import`) is built once and kept under a tag that
  names a hash of its recipe, so later runs reuse it; a file lock keeps two
  runs from building it at the same time;
- wheels of worker and all its dependencies are built on the host, so the
  project's Dockerfile builds with no network (no registry is needed).

What cannot be provisioned raises `Unavailable` with the reason; the test
turns it into a skip, or a failure when CI asks for the test
(`WORKER_REQUIRE_CONTAINER=1`). Every process started here gets a session of
its own, and only that session is ever killed; only images and containers
this run names are removed (the base image is kept on purpose: it is the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import psutil

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
# What the Dockerfile's build context needs from the repository.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "setup.py", "README.md")
CONTEXT_DIRS = ("worker", "certs")

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_DIR = Path("/var/tmp")
LOCK_FILE = STATE_DIR / "worker-test-provision.lock"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class BaseRecipe:
    """How the base image is made. Its hash is part of the image's tag: change
    anything here and the next run builds a new base instead of reusing a
    stale one."""

    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3", "python3-venv")
    # `docker import` makes an image with no configuration at all.
    changes: tuple[str, ...] = (f"ENV PATH={SYSTEM_PATH}", "ENV LANG=C.UTF-8")
    # Removed before the import: apt's package lists and caches.
    cleanup: tuple[str, ...] = (
        "var/lib/apt/lists/*_*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
    )
    revision: int = 1

    def tag(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"worker-test-base:{self.suite}-{digest[:12]}"


BASE = BaseRecipe()

APT_PACKAGES = ("docker.io", "debootstrap", "debian-archive-keyring")
APT_TIMEOUT = 900.0
DEBOOTSTRAP_TIMEOUT = 1800.0
DAEMON_START_TIMEOUT = 60.0


class Unavailable(Exception):
    """This host cannot run the container test; the message says why."""


class CommandFailed(AssertionError):
    """A command exited non-zero or ran out of time."""


def system_env(**extra: str) -> dict[str, str]:
    """The environment for system tools: ours, with a system PATH (the test
    may run in a venv whose PATH lacks /usr/sbin) and no interactive apt."""
    return {**os.environ, "PATH": SYSTEM_PATH, "DEBIAN_FRONTEND": "noninteractive", **extra}


def _tail(data: bytes, lines: int = 20) -> str:
    return "\n".join(data.decode("utf-8", "replace").rstrip().splitlines()[-lines:])


def run(
    args: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command in a session of its own; on timeout kill that session
    (only what this command started), then raise."""
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        raise CommandFailed(f"`{' '.join(args)}` could not start: {error}") from None
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise CommandFailed(
            f"`{' '.join(args)}` did not finish within {timeout:g} s\n{_tail(out + err)}"
        ) from None
    result = subprocess.CompletedProcess(list(args), process.returncode, out, err)
    if check and result.returncode != 0:
        raise CommandFailed(f"`{' '.join(args)}` exited {result.returncode}\n{_tail(out + err)}")
    return result


def until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; return that.
    Past ``timeout`` seconds raise AssertionError naming ``what`` and the last
    value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {value!r})")
        time.sleep(interval)


@contextlib.contextmanager
def locked(path: Path = LOCK_FILE) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block:
    a concurrent run waits here instead of provisioning the same things."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=SYSTEM_PATH)


# --- packages ---------------------------------------------------------------


def ensure_packages() -> None:
    """Install docker.io and debootstrap through apt when either is missing."""
    have_docker = find_tool("dockerd") is not None and docker_client() is not None
    if have_docker and find_tool("debootstrap") is not None:
        return
    apt = find_tool("apt-get")
    if apt is None:
        raise Unavailable("docker.io or debootstrap is missing and there is no apt-get")
    timeout = ["-o", "DPkg::Lock::Timeout=300"]
    try:
        run([apt, *timeout, "update"], timeout=APT_TIMEOUT, env=system_env())
        run(
            [apt, *timeout, "install", "-y", "--no-install-recommends", *APT_PACKAGES],
            timeout=APT_TIMEOUT,
            env=system_env(),
        )
    except CommandFailed as error:
        raise Unavailable(
            f"cannot install {', '.join(APT_PACKAGES)} through apt: {error}"
        ) from None


def docker_client() -> str | None:
    """The `docker` client to use: $WORKER_TEST_DOCKER, else Debian's
    /usr/bin/docker (the same release as docker.io's daemon), else PATH's."""
    chosen = os.environ.get("WORKER_TEST_DOCKER")
    if chosen:
        return chosen
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    return find_tool("docker")


# --- the daemon -------------------------------------------------------------


@dataclass
class DockerHost:
    """A working `docker` client and daemon."""

    docker: str
    daemon: subprocess.Popen[bytes] | None = None  # set when this run started dockerd
    daemon_log: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        timeout: float = 60.0,
        check: bool = True,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return run([self.docker, *args], timeout=timeout, check=check, stdin=stdin, env=env)

    def text(self, *args: str, timeout: float = 60.0) -> str:
        """stdout of a docker command that must succeed, stripped."""
        return self(*args, timeout=timeout).stdout.decode().strip()

    def image_exists(self, ref: str) -> bool:
        return self("image", "inspect", ref, check=False, timeout=30).returncode == 0

    def answers(self) -> bool:
        """Whether the client works and reaches a daemon."""
        try:
            return self("info", check=False, timeout=30).returncode == 0
        except CommandFailed:
            return False

    def close(self) -> None:
        """Leave dockerd running, even one this run started: another run on
        this host may be building or running a container with it now."""
        if self.daemon is not None:
            self.notes.append(f"left the dockerd this run started running (pid {self.daemon.pid})")
            self.daemon = None


def _wait_answering(host: DockerHost, daemon: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while not host.answers():
        if (daemon is not None and daemon.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def running_dockerd() -> int | None:
    """The PID of a dockerd that is already running, from its pid file."""
    try:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        return pid if psutil.Process(pid).name() == "dockerd" else None
    except (OSError, ValueError, psutil.Error):
        return None


def start_daemon(docker: str) -> DockerHost:
    """Start dockerd in a session of its own, its output in a log under
    /var/tmp; wait until it answers."""
    dockerd = find_tool("dockerd")
    if dockerd is None:
        raise Unavailable("`docker info` fails and there is no dockerd to start")
    fd, log_name = tempfile.mkstemp(prefix="worker-test-dockerd-", suffix=".log", dir=STATE_DIR)
    log = Path(log_name)
    with os.fdopen(fd, "wb") as log_file:
        daemon = subprocess.Popen(
            [dockerd],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=system_env(),
            start_new_session=True,
        )
    host = DockerHost(docker, daemon, log)
    if not _wait_answering(host, daemon):
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)  # the session it was started in
            daemon.wait()
        reason = _tail(log.read_bytes())
        log.unlink(missing_ok=True)
        raise Unavailable(
            f"the dockerd started here did not answer within {DAEMON_START_TIMEOUT:g} s "
            f"(exit status {daemon.returncode}):\n{reason}"
        )
    host.notes.append(f"started dockerd (pid {daemon.pid}, log {log})")
    return host


def provision() -> DockerHost:
    """Packages and a running daemon; raise Unavailable if impossible."""
    if os.geteuid() != 0:
        raise Unavailable("not root: the container test needs root (apt, dockerd, debootstrap)")
    with locked():
        ensure_packages()
        docker = docker_client()
        if docker is None:
            raise Unavailable("no docker client, even after installing docker.io")
        try:
            client = run(
                [docker, "version", "--format", "{{.Client.Version}}"], check=False, timeout=30
            )
        except CommandFailed as error:
            raise Unavailable(str(error)) from None
        if not client.stdout.strip():
            raise Unavailable(f"the docker client {docker} does not work: {_tail(client.stderr)}")
        host = DockerHost(docker)
        if not host.answers():
            pid = running_dockerd()
            if pid is None:
                host = start_daemon(docker)
            elif not _wait_answering(host, None):
                raise Unavailable(f"dockerd (pid {pid}) runs but does not answer `docker info`")
    version = host.text("version", "--format", "{{.Client.Version}} / {{.Server.Version}}")
    host.notes.append(f"docker {docker}: client / daemon {version}")
    return host


# --- the base image ---------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt uses for bookworm on this host, else deb.debian.org."""
    sources = Path("/etc/apt")
    for path in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = dict(re.findall(r"(?m)^(\w[\w-]*):\s*(.*)$", stanza))
                suites = fields.get("Suites", "").split()
                if fields.get("Enabled", "yes") != "no" and "bookworm" in suites:
                    for uri in fields.get("URIs", "").split():
                        if uri.startswith(("http://", "https://")):
                            return uri
        elif path.suffix == ".list":
            for line in text.splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(https?://\S+)\s+bookworm\s", line)
                if match:
                    return match.group(1)
    return DEFAULT_MIRROR


def _unmount_under(root: Path) -> None:
    """Unmount whatever a failed debootstrap left mounted inside ``root``
    (proc, sys, a bind of /dev), deepest first."""
    prefix = str(root.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", point], timeout=60, check=False, env=system_env())


def _remove_tree(root: Path) -> None:
    _unmount_under(root)
    # --one-file-system: never descend into anything still mounted there.
    run(["rm", "-rf", "--one-file-system", str(root)], timeout=300, check=False)


def ensure_base_image(host: DockerHost) -> str:
    """The cached base image, built now if missing; return its tag."""
    tag = BASE.tag()
    with locked():
        if host.image_exists(tag):
            host.notes.append(f"base image {tag}: cached")
            return tag
        started = time.monotonic()
        debootstrap = find_tool("debootstrap")
        if debootstrap is None:
            raise Unavailable("debootstrap is not installed")
        mirror = debian_mirror()
        work = Path(tempfile.mkdtemp(prefix="worker-test-rootfs-", dir=STATE_DIR))
        rootfs = work / "rootfs"
        try:
            try:
                run(
                    [
                        debootstrap,
                        f"--variant={BASE.variant}",
                        f"--include={','.join(BASE.include)}",
                        BASE.suite,
                        str(rootfs),
                        mirror,
                    ],
                    timeout=DEBOOTSTRAP_TIMEOUT,
                    env=system_env(),
                )
            except CommandFailed as error:
                raise Unavailable(f"debootstrap from {mirror} failed: {error}") from None
            _unmount_under(rootfs)
            for pattern in BASE.cleanup:
                for leftover in rootfs.glob(pattern):
                    leftover.unlink()
            _import(host, rootfs, tag)
        finally:
            _remove_tree(work)
        host.notes.append(f"base image {tag}: built in {time.monotonic() - started:.0f} s")
        return tag


def _import(host: DockerHost, rootfs: Path, tag: str) -> None:
    """`tar -C rootfs -c . | docker import - tag`, both checked."""
    changes = [arg for change in BASE.changes for arg in ("--change", change)]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=system_env(),
        start_new_session=True,
    )
    assert tar.stdout is not None
    try:
        imported = run_with_stdin(
            [host.docker, "import", *changes, "-", tag], tar.stdout, timeout=600
        )
    finally:
        tar.stdout.close()
        _, tar_err = tar.communicate(timeout=600)
    if tar.returncode != 0:
        host("rmi", tag, check=False)
        raise CommandFailed(f"tar of the base rootfs exited {tar.returncode}: {_tail(tar_err)}")
    if imported.returncode != 0:
        raise CommandFailed(f"docker import exited {imported.returncode}: {_tail(imported.stderr)}")


def run_with_stdin(
    args: Sequence[str], stdin: IO[bytes], timeout: float
) -> subprocess.CompletedProcess[bytes]:
    """Like ``run(check=False)``, with an open file (a pipe) as stdin."""
    process = subprocess.Popen(
        list(args),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise CommandFailed(f"`{' '.join(args)}` did not finish within {timeout:g} s") from None
    return subprocess.CompletedProcess(list(args), process.returncode, out, err)


# --- the project image ------------------------------------------------------


def python311() -> str:
    """A CPython 3.11 with pip, to build wheels for the container's 3.11."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, 11) else []
    candidates += [p for p in (shutil.which("python3.11"), "/usr/bin/python3.11") if p]
    for python in candidates:
        probe = run([python, "-m", "pip", "--version"], timeout=60, check=False)
        if probe.returncode == 0 and b"(python 3.11)" in probe.stdout:
            return python
    raise Unavailable("no Python 3.11 with pip here to build the container's wheels")


def _copy_sources(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "worker-spawn")
    for name in CONTEXT_FILES:
        shutil.copy2(REPO / name, dest / name)
    for name in CONTEXT_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=ignore)


def build_context(dest: Path) -> Path:
    """A build context in ``dest``: the repository's files the Dockerfile
    uses, plus wheels/ with worker and every dependency (built from a
    separate copy, so nothing is written into the repository)."""
    context = dest / "context"
    source = dest / "source"
    context.mkdir()
    source.mkdir()
    _copy_sources(context)
    _copy_sources(source)
    try:
        run(
            [
                python311(),
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "--wheel-dir",
                str(context / "wheels"),
                str(source),
            ],
            timeout=900,
        )
    except CommandFailed as error:
        raise Unavailable(f"cannot build the wheels (is PyPI reachable?): {error}") from None
    return context


def build_image(host: DockerHost, context: Path, base: str, tag: str, version: str) -> None:
    """`docker build`, offline, with the classic builder: it needs no registry for a
    local base image, and what it makes are plain images, so removing ``tag``
    removes the layers too. If the build fails, the layers it made so far are
    removed here (not those it took from the cache: they may be another
    build's)."""
    result = host(
        "build",
        "--force-rm",
        "--network=none",  # the wheels are all it may install from
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        f"VERSION={version}",
        "--tag",
        tag,
        str(context),
        timeout=900,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if result.returncode == 0:
        return
    output = result.stdout.decode(errors="replace")
    for layer in reversed(_layers_made(output)):
        host("rmi", "--no-prune", layer, check=False)
    raise CommandFailed(
        f"docker build exited {result.returncode}\n{_tail(result.stdout + result.stderr, 40)}"
    )


def _layers_made(output: str) -> list[str]:
    """The image IDs the classic builder's output says each step made: not
    FROM's (the base) nor a step's that was a cache hit."""
    made = []
    for step in re.split(r"(?m)^Step \d+/\d+ : ", output)[1:]:
        if step.upper().startswith("FROM ") or "Using cache" in step:
            continue
        ids = re.findall(r"(?m)^ ---> ([0-9a-f]{12})$", step)
        if ids:
            made.append(ids[-1])
    return made
