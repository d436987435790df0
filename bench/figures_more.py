"""Figures of the second round (issue 16): `run -w` as a whole process, the
job list with 10,000 retained jobs, and a verified user during a
wrong-password flood."""

from __future__ import annotations

import base64
import json
import os
import statistics
import threading
import time
from pathlib import Path

from bench import CA, PASSWORD, ROOT, USER
from bench.context import Bench, alternate
from bench.figures_api import check_replies, wall_ms
from bench.httpload import LoadSpec, get_request, load, percentile, post_request
from bench.procs import AUTH, Https, Server, cli_command
from bench.report import Figure, Target

RETAINED = 10_000
WINDOW = 3.0
PACED = 4  # connections, one request every PACE seconds each
PACE = 0.01
BOB = "Basic " + base64.b64encode(b"bob:builder").decode()


def cli_run_wait(bench: Bench) -> Figure:
    """`worker run -w true` against curl making the same one request (run
    and follow: POST /jobs/run?follow=true)."""
    figure = Figure(
        "cli_run_wait",
        "`worker run -w true` wall time, a whole CLI process",
        "ms",
        Target("ratio<=", 3),
        baseline_name="curl, POST /jobs/run?follow=true",
    )
    port = bench.server.port
    cli = [*cli_command(), "run", "-w", "true"]
    env = {**os.environ, "WORKER_URL": f"https://127.0.0.1:{port}", "WORKER_CA": str(CA)}
    env.update(WORKER_USER=USER, WORKER_PASSWORD=PASSWORD)
    curl = [
        "/usr/bin/curl", "-sS", "--fail", "--cacert", str(CA), "-u", f"{USER}:{PASSWORD}",
        "-H", "Content-Type: application/json", "-d", json.dumps({"command": "true"}),
        f"https://127.0.0.1:{port}/jobs/run?follow=true",
    ]  # fmt: skip
    if not Path(curl[0]).exists():
        raise RuntimeError("curl is not at /usr/bin/curl")
    wall_ms(cli, env)
    wall_ms(curl, env)
    runs = bench.runs_at_least(11)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, lambda: wall_ms(cli, env), lambda: wall_ms(curl, env)
    )
    figure.note = f"median of {runs} runs each; stdout piped; the job is /bin/true"
    return figure


def _retain(bench: Bench) -> tuple[Server, Https]:
    """A server of our own keeping RETAINED finished jobs of alice's."""
    server = bench.worker("--keep-finished", str(RETAINED * 2))
    http = Https(server.port)
    body = json.dumps({"command": "/bin/true"}).encode()
    result = load([LoadSpec(server.port, post_request("/jobs/run", body), 16, total=RETAINED)])
    if result.statuses != {201: RETAINED}:
        raise RuntimeError(f"run replies {result.statuses}")
    deadline = time.monotonic() + 120
    while http.request("GET", "/jobs?status=running&limit=1").json()["jobs"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the jobs did not all end")
        time.sleep(0.2)
    return server, http


def _paced_p99(port: int, request: bytes) -> float:
    result = load([LoadSpec(port, request, PACED, WINDOW, interval=PACE)])
    check_replies(result, "paced")
    return percentile(result.latencies, 0.99) * 1000


def job_list_latency(bench: Bench) -> Figure:
    """The first page of GET /jobs with 10,000 retained jobs; and another
    user's status p99 while one user lists in a loop, against idle."""
    figure = Figure(
        "list_p99_ms",
        f"GET /jobs (first page of 100) p99 with {RETAINED:,} retained jobs",
        "ms",
        Target("<=", 5),
    )
    server, http = _retain(bench)
    try:
        bob_job = json.loads(
            http.request_as(BOB, "POST", "/jobs/run", {"command": "/bin/true"}).body
        )["id"]
        bob_status = get_request(f"/jobs/{bob_job}/status").replace(AUTH.encode(), BOB.encode())
        runs = bench.runs_at_least(3)
        figure.worker_runs = [_paced_p99(server.port, get_request("/jobs")) for _ in range(runs)]
        idle = [_paced_p99(server.port, bob_status) for _ in range(runs)]
        busy = []
        for _ in range(runs):
            stop = threading.Event()
            lister = threading.Thread(target=_list_in_a_loop, args=(server.port, stop))
            lister.start()
            try:
                busy.append(_paced_p99(server.port, bob_status))
            finally:
                stop.set()
                lister.join()
        ratio = statistics.median(busy) / statistics.median(idle)
        figure.extra = {"bob status p99 idle ms": idle, "while alice lists ms": busy}
        figure.note = (
            f"{PACED} connections x one request per {PACE * 1000:.0f} ms, {WINDOW:g} s windows, "
            f"median of {runs}; another user's status p99 while alice lists in a loop: "
            f"{statistics.median(busy):.2f} ms vs {statistics.median(idle):.2f} ms idle "
            f"({ratio:.2f}x)"
        )
    finally:
        http.close()
        server.stop()
    return figure


def _list_in_a_loop(port: int, stop: threading.Event) -> None:
    client = Https(port)
    try:
        while not stop.is_set():
            client.request("GET", "/jobs")
    finally:
        client.close()


def status_during_login_flood(bench: Bench) -> Figure:
    """A verified user's status p99 during a wrong-password flood from
    another uid (the attackers of tests/integration/test_login_flood.py),
    against the same user's p99 idle just before."""
    figure = Figure(
        "status_p99_login_flood",
        "a verified user's status p99 during a wrong-password flood",
        "ms",
        Target("ratio<=", 3),
        baseline_name="the same, idle",
    )
    if os.geteuid() != 0:
        figure.error = "needs root, to flood as another uid (nobody)"
        return figure
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.integration import test_login_flood as flood

    request = get_request(f"/jobs/{bench.status_job}/status")
    runs = bench.runs_at_least(3)

    class _Port:  # what start_flood needs of a server
        port = bench.server.port

    def flooded() -> float:
        attackers = flood.start_flood(_Port(), flood.NOBODY)  # type: ignore[arg-type]
        try:
            return _paced_p99(bench.server.port, request)
        finally:
            flood.end_flood(attackers)

    figure.worker_runs, figure.baseline_runs = alternate(
        runs, flooded, lambda: _paced_p99(bench.server.port, request)
    )
    figure.note = (
        f"{flood.ATTACKERS} attacker processes as uid nobody ({flood.KEEPALIVE} keep-alive + "
        f"{flood.CHURN} new-connection attempts each, for {flood.FLOOD_SECONDS:g} s); the "
        f"verified user: {PACED} keep-alive connections, one status per {PACE * 1000:.0f} ms"
    )
    return figure
