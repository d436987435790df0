"""The bounds over job starts, measured without a server: the ceiling (the
server's own code for each job's kernel work, nothing else) and the floor
(that kernel work alone, in C). A server starts fewer jobs than either."""

from __future__ import annotations

import os
import statistics

from bench.baselines import popen_costs
from bench.ceiling import ceiling_rate
from bench.context import Bench, alternate
from bench.figures_starts import RUN_CLIENTS
from bench.floor import floor_costs
from bench.procs import run_isolated
from bench.report import Figure, Target
from bench.start_costs import WINDOW


def ceiling_jobs_started(bench: Bench) -> Figure:
    """The ceiling over jobs_per_s: a bare loop doing only each job's kernel
    work as this server does it (its spawner; another uid and the namespaces
    where the server's start-up line says its jobs get them; the cgroups with
    the default limits as a server detects them), as many jobs in flight as the server's figure
    has clients, against the same Popen loop. What a server adds (TLS, HTTP,
    the pipe to the executor, its records, its pumps) can only start fewer."""
    figure = Figure(
        "ceiling_jobs_per_s",
        "the ceiling: jobs started/s by a bare loop doing only each job's kernel work "
        "as the server does (no server)",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="Popen loop, same pipes",
    )
    uid = bench.jobs_get("a uid per user")
    namespaces = bench.jobs_get("PID and mount namespaces")
    limits: list[str] = []

    def ceiling() -> float:
        rate: float
        applied: str
        rate, applied = run_isolated(ceiling_rate, WINDOW, RUN_CLIENTS, uid, namespaces)
        limits.append(applied)
        return rate

    runs = bench.runs_at_least(3)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, ceiling, lambda: run_isolated(popen_costs, WINDOW)[0]
    )
    applied = [what for what, on in (("another uid", uid), ("namespaces", namespaces)) if on]
    figure.note = (
        f"{', '.join(applied) or 'no isolation'}; {limits[-1]}; through the server's spawner "
        "and cgroup code, each job's cgroups made, joined, its counters read, removed; "
        f"not done: the server's reads of /proc, its output pumps; {RUN_CLIENTS} jobs in "
        f"flight, {WINDOW:g} s windows, median of {runs}"
    )
    return figure


def floor_jobs_started(bench: Bench) -> Figure:
    """The floor under every job start's cost: the kernel work each of the
    server's jobs needs (another uid and the namespaces where the server's
    start-up line says its jobs get them; the cgroups with the default limits
    as a server detects them) done by small C loops with nothing else,
    against the same Popen loop; with what that work costs the machine per
    job, and what the target leaves a server on top of it."""
    figure = Figure(
        "floor_jobs_per_s",
        "the floor of a job's cost: jobs started/s by C loops doing only its kernel work "
        "(no server)",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="Popen loop, same pipes",
    )
    uid = bench.jobs_get("a uid per user")
    namespaces = bench.jobs_get("PID and mount namespaces")
    costs: list[float] = []
    baseline_costs: list[float] = []
    got: list[str] = []

    def floor() -> float:
        rate, cost, what = run_isolated(floor_costs, WINDOW, RUN_CLIENTS, uid, namespaces)
        costs.append(cost)
        got.append(what)
        return rate

    def popen() -> float:
        rate, cost, _ = run_isolated(popen_costs, WINDOW)
        baseline_costs.append(cost)
        return rate

    runs = bench.runs_at_least(3)
    figure.worker_runs, figure.baseline_runs = alternate(runs, floor, popen)
    cost = statistics.median(costs)
    cores = os.cpu_count() or 1
    budget = 1000 * cores / (0.5 * statistics.median(figure.baseline_runs))
    busy = statistics.median(figure.worker_runs) * cost / 10 / cores
    figure.extra = {
        "machine cpu ms per job": cost,
        "baseline machine cpu ms per job": statistics.median(baseline_costs),
        "left for a server at the target ms per job": budget - cost,
    }
    applied = [what for what, on in (("another uid", uid), ("namespaces", namespaces)) if on]
    figure.note = (
        f"{', '.join(applied) or 'no isolation'}; {got[-1]}; each job's pipes, cgroups made "
        f"with the default limits, born or joined, its counters read, removed; {RUN_CLIENTS} "
        f"loops, one job each in flight, {WINDOW:g} s windows, median of {runs}; machine CPU "
        f"per job {cost:.2f} ms ({busy:.0f}% of the {cores} cores busy); at 0.5x of the Popen "
        f"loop they leave at most {budget:.2f} ms per job, {budget - cost:.2f} ms of it for "
        "all that a server adds"
    )
    return figure
