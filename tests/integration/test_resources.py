"""Scale and resources: thousands of jobs, capped output, running out of descriptors."""

from __future__ import annotations

import base64
import http.client
import json
import resource
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.helpers import alive
from tests.integration.conftest import CA, start_server, stop_server

MiB = 1 << 20


class _Client:
    """One keep-alive HTTPS connection, for many requests in a row."""

    def __init__(self, port: int) -> None:
        context = ssl.create_default_context(cafile=str(CA))
        self._conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
        token = base64.b64encode(b"alice:wonderland").decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        payload = None if body is None else json.dumps(body).encode()
        self._conn.request(method, path, body=payload, headers=self._headers)
        reply = self._conn.getresponse()
        return reply.status, json.loads(reply.read())

    def close(self) -> None:
        self._conn.close()


@pytest.mark.slow
def test_two_thousand_jobs_at_once(tmp_path: Path) -> None:
    count, workers = 2000, 16
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 3 * count + 1000:
        pytest.skip(f"the open-files hard limit ({hard}) is below what {count} jobs need")
    server = start_server(
        tmp_path, "--kill-grace", "2", "--rate-limit-ms", "0", "--max-running-per-user", "2000"
    )
    try:

        def start(batch: int) -> list[int]:
            client = _Client(server.port)
            try:
                ids = []
                for _ in range(count // workers):
                    status, body = client.call(
                        "POST", "/jobs/run", {"command": "sleep", "args": ["60"]}
                    )
                    assert status == 201, body
                    ids.append(int(body["id"]))  # type: ignore[call-overload]
                return ids
            finally:
                client.close()

        def states(ids: list[int]) -> list[dict[str, object]]:
            client = _Client(server.port)
            try:
                return [client.call("GET", f"/jobs/{i}/status")[1] for i in ids]
            finally:
                client.close()

        with ThreadPoolExecutor(workers) as pool:
            batches = list(pool.map(start, range(workers)))
            ids = [i for batch in batches for i in batch]
            assert sorted(ids) == list(range(1, count + 1))
            found = [s for batch in pool.map(states, batches) for s in batch]
        assert {s["status"] for s in found} == {"running"}, {
            s["status"]: s for s in found if s["status"] != "running"
        }
        pids = [int(s["pid"]) for s in found]  # type: ignore[call-overload]
        assert all(alive(pid) for pid in pids)
        assert server.request("GET", "/jobs/1/status").status == 200  # still serving
    finally:
        stop_server(server.process, timeout=120)
    left = [pid for pid in pids if alive(pid)]
    assert left == []


def test_output_is_capped_and_the_server_stays_responsive(tmp_path: Path) -> None:
    cap = 4 * MiB
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--max-output", str(cap))
    try:
        executor = psutil.Process(server.executor_pid)
        before = executor.memory_info().rss
        writer = server.run_job("head", "-c", str(1 << 30), "/dev/zero")  # 1 GiB
        slowest = 0.0
        while server.status(writer)["status"] == "running":
            started = time.monotonic()
            assert server.request("GET", f"/jobs/{writer}/status").status == 200
            slowest = max(slowest, time.monotonic() - started)
        assert server.status(writer)["status"] == "completed"
        growth = executor.memory_info().rss - before
        reply = server.request("GET", f"/jobs/{writer}/out?limit={cap}").json()
        assert len(reply["output"]) == cap
        assert reply["truncated_bytes"] == (1 << 30) - cap == reply["offset"]
        assert reply["complete"]
        raw = server.request("GET", f"/jobs/{writer}/out?format=raw")
        assert len(raw.body) == cap
        assert raw.headers["X-Output-Truncated-Bytes"] == str((1 << 30) - cap)
        # The buffer holds 4 MiB; the rest is the reading and the replies.
        assert growth < 64 * MiB, growth
        assert slowest < 2.0, slowest
    finally:
        stop_server(server.process)


def test_running_out_of_descriptors_fails_the_job_not_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--kill-grace", "1")
    try:
        first = server.run_job("sleep", "60")
        executor = psutil.Process(server.executor_pid)
        # Just a few descriptors to spare: a handful of jobs, then EMFILE.
        limit = executor.num_fds() + 6
        executor.rlimit(psutil.RLIMIT_NOFILE, (limit, limit))
        ids = [server.run_job("sleep", "60") for _ in range(10)]
        states = [
            server.wait_for(i, lambda s: s["pid"] is not None or s["status"] != "running")
            for i in ids
        ]
        failed = [s for s in states if s["status"] == "failed"]
        assert failed, states
        for state in failed:
            assert "Too many open files" in server.output(state["id"])
            assert state["exit_code"] is None
        assert server.status(first)["status"] == "running"
        assert server.request("PUT", f"/jobs/{first}/kill").json()["status"] == "killed"
    finally:
        stop_server(server.process)
