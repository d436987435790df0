"""`python -m bench`: measure every figure of issue 6, print and save the table.

The exit status is 0 whenever the measurements were taken, targets met or
not; 1 when a figure could not be measured (the benchmark itself broke).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from rich.console import Console

from bench import RESULTS
from bench.context import COMMON_FLAGS, Bench
from bench.figures_api import cli_wall_time, status_latency_under_output, status_throughput
from bench.figures_bounds import ceiling_jobs_started, floor_jobs_started
from bench.figures_jobs import (
    kill_tree,
    memory_per_finished_job,
    memory_per_job,
    output_capture,
    output_capture_default_cap,
)
from bench.figures_more import cli_run_wait, job_list_latency, status_during_login_flood
from bench.figures_starts import isolated_jobs_started, jobs_started, limited_jobs_started
from bench.follow import follow_latency
from bench.machine import busy_meanwhile, code_version, describe, job_cgroups_in_use
from bench.procs import Https, start_sanic_baseline
from bench.report import Figure, Target, show, write_json

FigureFunction = Callable[[Bench], Figure]

# The figures the protections change, measured again beside them without
# namespaces and cgroups.
OFF_FLAGS = ("--no-namespaces", "--no-cgroups")
WITH_OFF = {
    "jobs_per_s",
    "capture_mib_s",
    "capture_default_cap_mib_s",
    "kill_ms",
    "memory_kib_per_job",
    "cli_run_wait",
}


def _figures() -> list[tuple[str, str, FigureFunction]]:
    def throughput(b: Bench) -> Figure:
        sanic = start_sanic_baseline(b.client.status(b.status_job))
        b.started.append(sanic)
        try:
            return status_throughput(b, sanic)
        finally:
            sanic.stop()

    return [
        ("status_rps", "status requests/s", throughput),
        ("jobs_per_s", "jobs started/s", jobs_started),
        ("ceiling_jobs_per_s", "jobs started/s, the ceiling", ceiling_jobs_started),
        ("floor_jobs_per_s", "jobs started/s, the floor", floor_jobs_started),
        ("isolated_jobs_per_s", "jobs started/s, isolation on", isolated_jobs_started),
        ("limited_jobs_per_s", "jobs started/s, limits on", limited_jobs_started),
        ("capture_mib_s", "output captured MiB/s", output_capture),
        (
            "capture_default_cap_mib_s",
            "output captured MiB/s, default cap",
            output_capture_default_cap,
        ),
        ("follow_p99_ms", "follow latency p99", follow_latency),
        ("cli_status", "CLI status wall time", cli_wall_time),
        ("kill_ms", "kill of a 100-process tree", kill_tree),
        ("memory_kib_per_job", "executor memory per job", memory_per_job),
        (
            "memory_kib_per_finished_job",
            "executor memory per finished job",
            memory_per_finished_job,
        ),
        ("status_p99_busy", "status p99 under output", status_latency_under_output),
        ("cli_run_wait", "CLI run -w wall time", cli_run_wait),
        ("list_p99_ms", "job list p99, 10,000 jobs", job_list_latency),
        ("status_p99_login_flood", "status p99 under a login flood", status_during_login_flood),
    ]


def _stop_on_term(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (at least 3)")
    parser.add_argument("--only", default="", help="comma-separated figure keys")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_term)
    console = Console(stderr=True)
    began = time.monotonic()
    bench = Bench(runs=max(3, args.runs))
    off = Bench(runs=bench.runs, flags=OFF_FLAGS)
    machine = describe()
    settings: dict[str, object] = {
        "rate limit": "off on every server (--rate-limit-ms 0)",
        "runs": f"median of {bench.runs} or more per figure",
        "code": code_version(),
    }
    quiet = busy_meanwhile()
    figures: list[Figure] = []
    wanted = {key for key in args.only.split(",") if key}
    try:
        _prepare(bench)
        cgroups = job_cgroups_in_use(bench.server.executor_pid)
        settings["job tracking"] = "cgroup v2 per job" if cgroups else "session and descent"
        console.print(f"worker serve {' '.join(COMMON_FLAGS)} on port {bench.server.port}")
        for key, title, function in _figures():
            if wanted and key not in wanted:
                continue
            console.print(f"measuring {title} ...", highlight=False)
            started = time.monotonic()
            try:
                figures.append(function(bench))
            except Exception as exc:
                traceback.print_exc()
                figures.append(_broken(key, title, exc))
            if key in WITH_OFF and figures[-1].error is None:
                _measure_off(figures[-1], function, off)
            console.print(f"  {time.monotonic() - started:.1f} s", highlight=False)
    except KeyboardInterrupt:
        console.print("interrupted; stopping the servers")
        return 130
    finally:
        off.stop_all()
        bench.stop_all()
    settings["machine busy before/after (other load)"] = (
        f"{quiet:.0f}% / {busy_meanwhile():.0f}% of all cores"
    )
    settings["total time"] = f"{time.monotonic() - began:.0f} s"
    settings["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    show(figures, machine, settings)
    path = RESULTS / "latest.json"
    write_json(path, figures, machine, settings)
    Console().print(f"written to {path}")
    return 1 if any(f.error for f in figures) else 0


def _measure_off(figure: Figure, function: FigureFunction, off: Bench) -> None:
    """The figure's worker side again, on the server with the protections
    off; a failure there is the figure's note, not another figure."""
    try:
        if off.main is None:
            _prepare(off)
        figure.off_runs = function(off).worker_runs
    except Exception as exc:
        traceback.print_exc()
        figure.note += f"; with the protections off it could not be measured: {exc}"


def _prepare(bench: Bench) -> None:
    """Its main server, a client, and a finished job for the status figures."""
    # Keeps every job (the status figures read job 1 after thousands
    # more), and lets the load's jobs all run at once (not the default quota).
    bench.main = bench.worker("--keep-finished", "10000000", "--max-running-per-user", "100000")
    bench.startup = bench.main.startup
    bench.http = Https(bench.main.port)
    bench.status_job = bench.http.run_job("/bin/true")
    bench.http.wait_final(bench.status_job)  # also caches the credentials


def _broken(key: str, title: str, exc: Exception) -> Figure:
    return Figure(key, title, "", Target("<=", 0), error=f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
