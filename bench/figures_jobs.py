"""Figures about jobs: capturing output, killing, memory."""

from __future__ import annotations

import contextlib
import statistics
import time

import psutil

from bench.baselines import TREE_SCRIPT, kill_tree_seconds, pipe_read_seconds, tree_ready
from bench.context import Bench, alternate
from bench.figures_starts import RUN_CLIENTS
from bench.httpload import LoadSpec, load, post_request, run_body
from bench.procs import Https, run_isolated
from bench.report import Figure, Target

MiB = 1 << 20
CAPTURE = 512 * MiB
MEMORY_JOBS = 2000
FINISHED_JOBS = 10_000


def output_capture(bench: Bench) -> Figure:
    """Every byte kept: a raised cap (``--max-output`` 512 MiB)."""
    return _capture(bench, "capture_mib_s", "--max-output", str(CAPTURE))


def output_capture_default_cap(bench: Bench) -> Figure:
    """The default cap (the last 64 MiB kept, the oldest bytes dropped as
    new ones come)."""
    return _capture(bench, "capture_default_cap_mib_s")


def _capture(bench: Bench, key: str, *flags: str) -> Figure:
    cap = "with --max-output 536870912" if flags else "with the default cap (64 MiB kept)"
    figure = Figure(
        key,
        f"output captured, a job writing 512 MiB until `completed`, {cap}",
        "MiB/s",
        Target("ratio>=", 0.5),
        baseline_name="Python reading the pipe",
    )
    size = str(CAPTURE)
    keeping: list[float] = []

    def worker() -> float:
        # A fresh server per run: no earlier run's output held meanwhile.
        with bench.own_worker(*flags) as (_, http):
            begin = time.perf_counter()
            job = http.run_job("head", "-c", size, "/dev/zero")
            state = http.wait_final(job, poll=0.005)
            elapsed = time.perf_counter() - begin
            if state["status"] != "completed":
                raise RuntimeError(f"the writer ended {state}")
            tail = http.request("GET", f"/jobs/{job}/out?format=raw&offset={CAPTURE - 1}")
            if tail.body != b"\0":  # the last byte is there, none lost
                raise RuntimeError("the captured output does not end at 512 MiB")
        return CAPTURE / MiB / elapsed

    def baseline() -> float:
        keeping.append(CAPTURE / MiB / run_isolated(pipe_read_seconds, CAPTURE, True))
        return CAPTURE / MiB / run_isolated(pipe_read_seconds, CAPTURE)

    figure.worker_runs, figure.baseline_runs = alternate(bench.runs, worker, baseline)
    figure.extra["baseline_keeping_the_bytes_mib_s"] = keeping
    figure.note = (
        f"`head -c 536870912 /dev/zero`, a fresh server per run {cap}, POST to status "
        "`completed` (polled every 5 ms); baseline reads 1 MiB at a time and discards; one "
        f"that keeps every chunk does {statistics.median(keeping):,.0f} MiB/s"
    )
    return figure


def kill_tree(bench: Bench) -> Figure:
    figure = Figure(
        "kill_ms",
        "kill of a job with a 100-process tree, request to reply",
        "ms",
        Target("ratio<=", 2),
        baseline_name="kill -TERM -PGID, wait all",
    )
    http = bench.client

    def worker() -> float:
        job = http.run_job("sh", "-c", TREE_SCRIPT)
        pids = tree_ready(psutil.Process(int(http.status(job)["pid"])))
        http.status(job)  # the connection is warm and kept alive
        begin = time.perf_counter()
        reply = http.kill(job)
        elapsed = time.perf_counter() - begin
        if reply.status != 200 or any(_running(pid) for pid in pids):
            raise RuntimeError(f"kill answered {reply.status} {reply.body!r}")
        return elapsed * 1000

    runs = bench.runs_at_least(5)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, worker, lambda: run_isolated(kill_tree_seconds) * 1000
    )
    figure.note = f"`sh -c '{TREE_SCRIPT}'`, median of {runs} runs each"
    return figure


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def count_jobs(http: Https, status: str) -> int:
    """How many of the user's jobs have ``status``, page by page."""
    count, cursor = 0, ""
    while True:
        page = http.request("GET", f"/jobs?status={status}&limit=1000{cursor}").json()
        count += len(page["jobs"])
        if page["next_cursor"] is None:
            return count
        cursor = f"&cursor={page['next_cursor']}"


def memory_per_finished_job(bench: Bench) -> Figure:
    """What the executor keeps per finished job that wrote nothing."""
    figure = Figure(
        "memory_kib_per_finished_job",
        f"executor memory per retained finished job (no output), {FINISHED_JOBS:,} jobs",
        "KiB",
        Target("<=", 2),
    )
    request = post_request("/jobs/run", run_body("/bin/true"))
    flags = ("--keep-finished", str(FINISHED_JOBS * 2))

    def one_run() -> float:
        with bench.own_worker(*flags) as (server, http):
            http.wait_final(http.run_job("/bin/true"))
            executor = psutil.Process(server.executor_pid)
            before = executor.memory_info().rss
            result = load([LoadSpec(server.port, request, RUN_CLIENTS, total=FINISHED_JOBS)])
            if result.statuses != {201: FINISHED_JOBS}:
                raise RuntimeError(f"run replies {result.statuses}")
            deadline = time.monotonic() + 60
            while count_jobs(http, "running") and time.monotonic() < deadline:
                time.sleep(0.2)
            if count_jobs(http, "completed") != FINISHED_JOBS + 1:
                raise RuntimeError("not every job completed")
            return (executor.memory_info().rss - before) / FINISHED_JOBS / 1024

    figure.worker_runs = [one_run() for _ in range(bench.runs)]
    figure.note = (
        f"executor RSS (psutil) after minus before {FINISHED_JOBS:,} `/bin/true` jobs that all "
        "completed and are kept, a fresh server per run"
    )
    return figure


def memory_per_job(bench: Bench) -> Figure:
    figure = Figure(
        "memory_kib_per_job",
        f"executor memory per running job at {MEMORY_JOBS:,} `sleep` jobs",
        "KiB",
        Target("<=", 64),
    )
    request = post_request("/jobs/run", run_body("sleep", "600"))
    api_growth: list[float] = []
    inits: list[float] = []
    rss: list[dict[str, float]] = []

    def one_run() -> float:
        with bench.own_worker("--max-running-per-user", str(MEMORY_JOBS)) as (server, http):
            http.wait_final(http.run_job("/bin/true"))  # warm both processes up
            executor = psutil.Process(server.executor_pid)
            api = psutil.Process(server.api_pid)
            before, api_before = executor.memory_info().rss, api.memory_info().rss
            result = load([LoadSpec(server.port, request, RUN_CLIENTS, total=MEMORY_JOBS)])
            if result.statuses != {201: MEMORY_JOBS}:
                raise RuntimeError(f"run replies {result.statuses}")
            running = count_jobs(http, "running")
            if running != MEMORY_JOBS:
                raise RuntimeError(f"{running} jobs running, not {MEMORY_JOBS}")
            time.sleep(0.5)
            after, api_after = executor.memory_info().rss, api.memory_info().rss
            api_growth.append((api_after - api_before) / MEMORY_JOBS / 1024)
            inits.append(_init_uss_kib(executor))
            rss.append({"before_mib": before / MiB, "after_mib": after / MiB})
            return (after - before) / MEMORY_JOBS / 1024

    figure.worker_runs = [one_run() for _ in range(bench.runs)]
    figure.extra["api_rss_growth_kib_per_job"] = api_growth
    figure.extra["init_uss_kib"] = inits
    figure.extra["executor_rss"] = rss
    figure.note = (
        f"executor RSS (psutil) after minus before {MEMORY_JOBS:,} `sleep 600` jobs, a fresh "
        f"server per run; the API process grew {statistics.median(api_growth):.1f} KiB/job; "
        f"each job's init (PID 1 of its namespace) had {statistics.median(inits):.0f} KiB "
        "of its own (USS, median)"
    )
    return figure


def _init_uss_kib(executor: psutil.Process) -> float:
    """The median memory of its own (USS) of the jobs' inits; 0 without
    PID namespaces (no inits)."""
    own = []
    for child in executor.children():
        with contextlib.suppress(psutil.Error):
            if child.name() == "worker-init":
                own.append(child.memory_full_info().uss / 1024)
    return statistics.median(own) if own else 0.0
