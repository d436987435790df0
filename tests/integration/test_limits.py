"""Limits per job, enforced by the kernel's cgroups, for real.

On this project's machines v1 holds the controllers (v2 holds none), so the
v1 path is what runs here; the v2 path runs where v2 has them. Skipped where
the server can use no controller (not root, or no cgroups at all).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import JOB_PYTHON, Server, start_server, stop_server

pytestmark = pytest.mark.slow

MiB = 1 << 20


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("limits"), "--rate-limit-ms", "0", "--kill-grace", "1"
    )
    if "limits: none" in server.startup or "(v" not in server.startup.split("limits:")[-1]:
        stop_server(server.process)
        pytest.skip(f"no cgroup controller here: {server.startup}")
    yield server
    stop_server(server.process)


def run(server: Server, command: str, *args: str, **limits: Any) -> int:
    reply = server.request(
        "POST", "/jobs/run", {"command": command, "args": list(args), "limits": limits}
    )
    assert reply.status == 201, reply.body
    return int(reply.json()["id"])


def controller_unavailable(server: Server, name: str) -> str | None:
    tail = server.startup.split("limits:", 1)[-1]
    return None if f"{name} (v" in tail else tail


def test_a_memory_hog_is_stopped_by_its_limit_and_said_to_be(limited: Server) -> None:
    hog = "a = []\nwhile True:\n    a.append(bytearray(1 << 20))"
    job = run(limited, JOB_PYTHON, "-c", hog, memory="64M")
    state = limited.wait_final(job, timeout=60)
    assert (state["status"], state["reason"], state["signal"]) == ("failed", "oom", 9), state
    assert state["limits"]["memory"] == 64 * MiB
    peak = state["usage"]["memory_peak"]
    assert peak is not None and 32 * MiB < peak <= 64 * MiB, peak


def test_a_fork_bomb_is_held_at_its_pids_limit_and_gone_after_its_kill(limited: Server) -> None:
    bomb = "b() { b | b & }; b; sleep 300"
    job = run(limited, "bash", "-c", bomb, pids=64)
    deadline = time.monotonic() + 30
    while True:
        state = limited.status(job)
        peak = (state["usage"] or {}).get("pids_peak") or 0
        if peak >= 64 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert peak == 64, state  # it hit the limit, and never went past it
    main = psutil.Process(state["pid"])
    members = [main, *main.children(recursive=True)]
    assert limited.request("PUT", f"/jobs/{job}/kill").json()["status"] == "killed"
    gone = psutil.wait_procs(members, timeout=10)[1]
    assert gone == [], gone
    assert limited.status(job)["usage"]["pids_peak"] == 64


def test_a_cpu_spinner_gets_its_share_and_no_more(limited: Server) -> None:
    if why := controller_unavailable(limited, "cpu"):
        pytest.skip(f"no cpu controller: {why}")
    spin = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass"
    job = run(limited, JOB_PYTHON, "-c", spin, cpus=0.2)
    state = limited.wait_final(job, timeout=30)
    assert state["status"] == "completed" and state["limits"]["cpus"] == 0.2
    used = state["usage"]["cpu_seconds"]
    # 3 s at a fifth of a core: about 0.6 s (the period's granularity and
    # the interpreter's start allow some slack either way).
    assert 0.3 < used < 1.0, used


def test_io_writes_are_held_to_their_rate(limited: Server) -> None:
    if why := controller_unavailable(limited, "io"):
        pytest.skip(f"no io controller: {why}")
    home = limited.home()
    try:
        os.stat(f"/sys/dev/block/{os.major(home.stat().st_dev)}:{os.minor(home.stat().st_dev)}")
    except OSError:
        pytest.skip(f"{home} is on no block device here")
    script = (
        "import os, time\n"
        "fd = os.open('blob', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)\n"
        "import mmap\nbuf = mmap.mmap(-1, 1 << 20)\nbegin = time.monotonic()\n"
        "for _ in range(6): os.write(fd, buf)\nos.fsync(fd)\n"
        "print(6 / (time.monotonic() - begin))\nos.unlink('blob')\n"
    )
    job = run(limited, JOB_PYTHON, "-c", script, io_write_bps="2M")
    state = limited.wait_final(job, timeout=60)
    if state["status"] != "completed" and "Invalid argument" in limited.output(job):
        pytest.skip("this filesystem refuses O_DIRECT")
    assert state["status"] == "completed", limited.output(job)
    assert state["limits"]["io_write_bps"] == 2 * MiB
    rate = float(limited.output(job))  # MiB/s as the job saw it
    assert rate < 3.0, rate  # 2 MiB/s with slack; unlimited, this disk does far more


def test_status_shows_limits_and_usage_while_running(limited: Server) -> None:
    job = run(limited, "sleep", "30", memory="128M")
    state = limited.wait_for(job, lambda s: s["usage"] is not None)
    assert state["limits"]["memory"] == 128 * MiB
    assert state["limits"]["pids"] > 0  # the server's default, filled in
    assert state["usage"]["pids_peak"] is not None
    assert state["unapplied_limits"] == {}
    limited.request("PUT", f"/jobs/{job}/kill")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"memory": "1000T"}, "above this server's maximum"),
        ({"cpus": 0}, "'limits.cpus' must be"),
        ({"pids": "many"}, "'limits.pids' must be"),
        ({"memory": "lots"}, "not a size"),
        ({"disk": 1}, "unknown limit"),
    ],
)
def test_bad_limits_are_a_400(limited: Server, limits: dict[str, Any], message: str) -> None:
    reply = limited.request("POST", "/jobs/run", {"command": "true", "limits": limits})
    assert reply.status == 400 and message in reply.json()["error"], reply.body


def test_jobs_are_likelier_oom_victims_than_the_server(limited: Server) -> None:
    job = run(limited, "sleep", "30")
    pid = limited.status(job)["pid"]
    score = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    servers = [limited.process.pid, limited.api_pid, limited.executor_pid]
    assert all(int(Path(f"/proc/{p}/oom_score_adj").read_text()) < score for p in servers)
    limited.request("PUT", f"/jobs/{job}/kill")
