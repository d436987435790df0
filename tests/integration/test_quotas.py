"""The server is never the victim: an output budget, quotas per user,
retention of finished jobs, and controllers turned off said to be."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

MiB = 1 << 20


def test_a_hundred_jobs_printing_at_full_speed_stay_within_the_budget(tmp_path: Path) -> None:
    budget = 64 * MiB
    server = start_server(
        tmp_path,
        "--rate-limit-ms", "0",
        # The user's own quota above the budget: it is the budget under test
        # (at a quota equal to it, the jobs printing would soon refuse the
        # next of the hundred).
        "--max-output-total", str(budget), "--max-output-per-user", str(4 * budget),
        "--max-running-per-user", "200",
    )  # fmt: skip
    try:
        executor = psutil.Process(server.executor_pid)
        start_rss = executor.memory_info().rss
        old = server.run_job("head", "-c", str(8 * MiB), "/dev/zero")
        assert server.wait_final(old)["status"] == "completed"
        jobs = [server.run_job("yes", "printing at full speed") for _ in range(100)]
        peak, slowest = 0, 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert server.request("GET", f"/jobs/{jobs[0]}/status").status == 200
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, executor.memory_info().rss)
        # The oldest finished job's output went first, and its out says so.
        page = server.request("GET", f"/jobs/{old}/out").json()
        assert page["evicted"] and page["output"] == "" and page["size"] == 8 * MiB
        newest = server.request("GET", f"/jobs/{jobs[-1]}/out?limit=4096").json()
        # Running jobs keep their newest bytes (their caps shrank fairly).
        assert "printing at full speed\nprinting" in newest["output"]
        # The output kept stayed within its budget; the rest is the server's own.
        assert (peak - start_rss) / MiB < budget / MiB + 96, (peak - start_rss) / MiB
        assert slowest < 2.0, slowest
    finally:
        stop_server(server.process)


def test_quotas_per_user_refuse_with_the_numbers(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, "--rate-limit-ms", "0", "--max-running-per-user", "3",
        "--max-output-per-user", "1M", "--kill-grace", "1",
    )  # fmt: skip
    try:
        sleepers = [server.run_job("sleep", "60") for _ in range(3)]
        refused = server.request("POST", "/jobs/run", {"command": "true"})
        assert refused.status == 429
        assert "3 jobs running" in refused.json()["error"]
        assert "Retry-After" not in refused.headers  # it takes the user to act
        assert server.request("POST", "/jobs/run", {"command": "true"}, user="bob").status == 201
        for job in sleepers:
            server.request("PUT", f"/jobs/{job}/kill")
        big = server.run_job("head", "-c", str(2 * MiB), "/dev/zero")
        server.wait_final(big)
        refused = server.request("POST", "/jobs/run", {"command": "true"})
        assert refused.status == 429 and "MiB of output" in refused.json()["error"]
        assert server.request("POST", "/jobs/run", {"command": "true"}, user="bob").status == 201
        # Removing finished jobs frees the quota.
        pruned = server.request("DELETE", "/jobs?finished=true").json()["deleted"]
        assert big in pruned and not set(sleepers) - set(pruned)
        assert server.request("POST", "/jobs/run", {"command": "true"}).status == 201
    finally:
        stop_server(server.process)


def test_retention_and_removal(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--keep-finished", "3")
    try:
        ids = []
        for _ in range(5):  # each ended before the next starts
            ids.append(server.run_job("true"))
            server.wait_final(ids[-1])
        listed = [job["id"] for job in server.request("GET", "/jobs").json()["jobs"]]
        assert listed == ids[:1:-1]  # the newest 3; the two oldest were forgotten
        assert server.request("GET", f"/jobs/{ids[0]}/status").status == 404
        running = server.run_job("sleep", "60")
        assert server.request("DELETE", f"/jobs/{running}").status == 409
        assert server.request("DELETE", f"/jobs/{ids[-1]}").json() == {"deleted": [ids[-1]]}
        assert server.request("GET", f"/jobs/{ids[-1]}/status").status == 404
        assert server.request("DELETE", f"/jobs/{ids[-1]}").status == 404
        assert server.request("DELETE", f"/jobs/{ids[-2]}", user="bob").status == 404
        assert server.request("DELETE", "/jobs").status == 400
        server.request("PUT", f"/jobs/{running}/kill")
    finally:
        stop_server(server.process)


def test_jobs_are_forgotten_after_keep_for(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--keep-for", "1s")
    try:
        job = server.run_job("true")
        server.wait_final(job)
        running = server.run_job("sleep", "60")
        deadline = time.monotonic() + 10
        while server.request("GET", f"/jobs/{job}/status").status != 404:
            assert time.monotonic() < deadline, "still kept"
            time.sleep(0.1)
        assert server.status(running)["status"] == "running"  # only finished jobs go
        server.request("PUT", f"/jobs/{running}/kill")
    finally:
        stop_server(server.process)


def test_a_controller_turned_off_is_reported_not_pretended(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--cgroup-controllers", "memory,pids")
    try:
        if "limits: none" in server.startup:
            pytest.skip(f"no cgroup controller here: {server.startup}")
        assert "no cpu: turned off (--cgroup-controllers)" in server.startup
        reply = server.request(
            "POST", "/jobs/run", {"command": "true", "limits": {"cpus": 0.5, "memory": "64M"}}
        )
        state = server.wait_final(int(reply.json()["id"]))
        assert state["unapplied_limits"] == {"cpus": "turned off (--cgroup-controllers)"}
        assert state["limits"]["memory"] == 64 * MiB and "cpus" not in state["limits"]
    finally:
        stop_server(server.process)


def test_the_cli_sets_limits_removes_and_prunes(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, "--rate-limit-ms", "0", "--max-running-per-user", "1", "--kill-grace", "1"
    )
    try:
        limited = server.cli(
            "--json", "run", "--memory", "64M", "--cpus", "0.5", "--pids-limit", "50",
            "--device-write-bps", "10M", "sh", "-c", "read x; exit 0",
        )  # fmt: skip
        assert limited.returncode == 0, limited.stderr
        running = json.loads(limited.stdout)["id"]
        limits = server.status(running)["limits"]
        applied = {key: limits[key] for key in ("memory", "cpus", "pids") if key in limits}
        unapplied = server.status(running).get("unapplied_limits") or {}
        for key, value in (("memory", 64 * MiB), ("cpus", 0.5), ("pids", 50)):
            assert applied.get(key) == value or key in unapplied, (limits, unapplied)
        # Over the running quota: one 429, said at once and not retried.
        started = time.monotonic()
        over = server.cli("run", "true")
        assert over.returncode != 0 and "1 job running" in over.stderr.decode(), over.stderr
        assert time.monotonic() - started < 5
        server.request("POST", f"/jobs/{running}/stdin?eof=true", raw_body=b"")
        assert server.wait_final(running)["status"] == "completed"
        done = [int(server.cli("run", "true").stdout) for _ in range(1)]
        server.wait_final(done[0])
        sleeper = int(server.cli("run", "sleep", "60").stdout)
        # rm: the running one is refused and said; the others go all the same.
        removed = server.cli("rm", str(running), str(sleeper), str(done[0]))
        assert removed.returncode != 0
        assert f"job {sleeper} is running" in removed.stderr.decode(), removed.stderr
        assert removed.stdout.split() == [str(running).encode(), str(done[0]).encode()]
        assert server.request("GET", f"/jobs/{running}/status").status == 404
        server.cli("kill", str(sleeper))
        pruned = server.cli("prune")
        assert pruned.returncode == 0 and pruned.stdout.split() == [str(sleeper).encode()]
        assert server.request("GET", "/jobs").json()["jobs"] == []
    finally:
        stop_server(server.process)
