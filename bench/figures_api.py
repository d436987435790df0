"""Figures about answering requests: throughput, CLI wall time, latency."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench import CA, PASSWORD, USER
from bench.context import Bench, alternate
from bench.httpload import LoadResult, LoadSpec, get_request, load, percentile
from bench.procs import Server, cli_command
from bench.report import Figure, Target

CONNECTIONS = 32
CLIENT_PROCESSES = 2
WINDOW = 3.0
CLI_RUNS = 11
PACED_CONNECTIONS = 4
PACE = 0.01  # each paced connection: one status request every 10 ms


def check_replies(result: LoadResult, what: str) -> None:
    bad = {status: n for status, n in result.statuses.items() if not 200 <= status < 300}
    if bad or result.lost or not result.ok:
        raise RuntimeError(f"{what}: replies {result.statuses}, lost connections {result.lost}")


def status_throughput(bench: Bench, baseline: Server) -> Figure:
    figure = Figure(
        "status_rps",
        f"status requests/s, HTTPS keep-alive, {CONNECTIONS} connections",
        "req/s",
        Target("ratio>=", 0.5),
        baseline_name="bare Sanic HTTPS app",
    )
    request = get_request(f"/jobs/{bench.status_job}/status")
    per_process = CONNECTIONS // CLIENT_PROCESSES
    cpu: dict[str, list[float]] = {
        "worker api": [],
        "worker executor": [],
        "clients (worker)": [],
        "baseline": [],
        "clients (baseline)": [],
    }

    def rate(server: Server, processes: dict[str, int], asked: bytes = request) -> float:
        specs = [LoadSpec(server.port, asked, per_process, WINDOW)] * CLIENT_PROCESSES
        began = time.monotonic()
        with cpu_share(processes, cpu):
            result = load(specs)
        side = "worker" if server is bench.server else "baseline"
        if processes:  # a run whose CPU is reported
            cpu[f"clients ({side})"].append(100 * result.cpu / (time.monotonic() - began))
        check_replies(result, server.name)
        return result.ok / result.window

    main = {"worker api": bench.server.api_pid, "worker executor": bench.server.executor_pid}
    runs = bench.runs_at_least(5)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs,
        lambda: rate(bench.server, main),
        lambda: rate(baseline, {"baseline": baseline.api_pid}),
    )
    busy = ", ".join(f"{name} {statistics.median(values):.0f}%" for name, values in cpu.items())
    # The job above is settled (finished): the API answers from what it kept.
    # A running job's status is a round trip to the executor each time.
    sleeper = bench.client.run_job("sleep", "3600")
    try:
        running_request = get_request(f"/jobs/{sleeper}/status")
        running = [rate(bench.server, {}, running_request) for _ in range(runs)]
    finally:
        bench.client.kill(sleeper)
    figure.extra["server_cpu_percent"] = cpu
    figure.extra["running_job_rps"] = running
    figure.note = (
        f"{CLIENT_PROCESSES} client processes x {per_process} connections, {WINDOW:g} s windows "
        f"after 0.5 s of warm-up, median of {runs}; credentials cached beforehand; the job has "
        "finished, so the API answers from the settled jobs it keeps; a running job's status "
        f"(a round trip to the executor each) {statistics.median(running):,.0f} req/s; "
        f"CPU in % of one core (of {os.cpu_count()}) while loaded: {busy}"
    )
    return figure


@contextlib.contextmanager
def cpu_share(processes: dict[str, int], into: dict[str, list[float]]) -> Iterator[None]:
    """How busy each process was meanwhile, in % of one core."""
    watched = {name: psutil.Process(pid) for name, pid in processes.items()}
    before = {name: sum(p.cpu_times()[:2]) for name, p in watched.items()}
    began = time.monotonic()
    yield
    elapsed = time.monotonic() - began
    for name, process in watched.items():
        used = sum(process.cpu_times()[:2]) - before[name]
        into.setdefault(name, []).append(100 * used / elapsed)


def wall_ms(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return elapsed * 1000


def cli_wall_time(bench: Bench) -> Figure:
    figure = Figure(
        "cli_status",
        "`worker status ID` wall time, a whole CLI process",
        "ms",
        Target("ratio<=", 3),
        baseline_name="curl, same request",
    )
    port, job = bench.server.port, bench.status_job
    cli = [*cli_command(), "status", str(job)]
    env = {**os.environ, "WORKER_URL": f"https://127.0.0.1:{port}", "WORKER_CA": str(CA)}
    env.update(WORKER_USER=USER, WORKER_PASSWORD=PASSWORD)
    curl = [
        "/usr/bin/curl",
        "-sS",
        "--fail",
        "--cacert",
        str(CA),
        "-u",
        f"{USER}:{PASSWORD}",
        f"https://127.0.0.1:{port}/jobs/{job}/status",
    ]
    if not Path(curl[0]).exists():
        raise RuntimeError("curl is not at /usr/bin/curl")
    # Warm the page cache and the server's credential cache first.
    wall_ms(cli, env)
    wall_ms(curl, env)
    runs = bench.runs_at_least(CLI_RUNS)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, lambda: wall_ms(cli, env), lambda: wall_ms(curl, env)
    )
    figure.note = (
        f"median of {runs} runs each; CLI is {' '.join(Path(a).name for a in cli[:3])}, "
        "stdout piped (plain key: value lines; Rich only on a terminal)"
    )
    return figure


def _paced_p99(server: Server, path: str) -> float:
    spec = LoadSpec(server.port, get_request(path), PACED_CONNECTIONS, WINDOW, interval=PACE)
    result = load([spec])
    check_replies(result, server.name)
    return percentile(result.latencies, 0.99) * 1000


def _written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def status_latency_under_output(bench: Bench) -> Figure:
    figure = Figure(
        "status_p99_busy",
        "status p99 latency while another job writes at full speed",
        "ms",
        Target("ratio<=", 3),
        baseline_name="status p99, idle server",
    )
    path = f"/jobs/{bench.status_job}/status"
    http = bench.client
    speeds: list[float] = []

    def busy() -> float:
        job = http.run_job("cat", "/dev/zero")
        pid = int(http.status(job)["pid"])
        time.sleep(0.3)
        before, started = _written(pid), time.monotonic()
        try:
            return _paced_p99(bench.server, path)
        finally:
            speeds.append((_written(pid) - before) / (time.monotonic() - started) / 2**20)
            reply = http.kill(job)
            if reply.status != 200:
                raise RuntimeError(f"kill of the writer failed: {reply.status} {reply.body!r}")

    runs = bench.runs_at_least(5)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, busy, lambda: _paced_p99(bench.server, path)
    )
    figure.extra["writer_mib_per_s"] = speeds
    figure.note = (
        f"{PACED_CONNECTIONS} connections, one status each per {PACE * 1000:g} ms for "
        f"{WINDOW:g} s, median of {runs}; the writer (`cat /dev/zero`, default 64 MiB cap) wrote "
        f"{statistics.median(speeds):,.0f} MiB/s meanwhile"
    )
    return figure
