"""Figures about starting jobs: their rate by default, with isolation on,
and with limits asked (the bounds over them are in figures_bounds.py)."""

from __future__ import annotations

import json
import os
import statistics

from bench.context import Bench, alternate
from bench.figures_api import check_replies
from bench.httpload import LoadSpec, load, post_request, run_body
from bench.isolation import isolated_rate, step_costs
from bench.procs import run_isolated
from bench.report import Figure, Target
from bench.start_costs import WINDOW, StartCosts

RUN_CLIENTS = 16
RUN_PROCESSES = 2


def jobs_started(bench: Bench) -> Figure:
    figure = Figure(
        "jobs_per_s",
        f"jobs started/s, POST /jobs/run of /bin/true, {RUN_CLIENTS} clients",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="Popen loop, same pipes",
    )
    request = post_request("/jobs/run", run_body("/bin/true"))
    per_process = RUN_CLIENTS // RUN_PROCESSES

    def failed() -> int:
        return len(bench.client.request("GET", "/jobs?status=failed").json()["jobs"])

    costs = StartCosts(bench.server_processes())

    def worker() -> float:
        specs = [LoadSpec(bench.server.port, request, per_process, WINDOW)] * RUN_PROCESSES
        failed_before = failed()
        rate = costs.rate(specs)
        if failed() != failed_before:  # 201, but the job could not start
            raise RuntimeError(f"{failed() - failed_before} jobs failed to start")
        return rate

    runs = bench.runs_at_least(5)
    figure.worker_runs, figure.baseline_runs = alternate(runs, worker, costs.popen_rate)
    figure.extra = costs.extra()
    figure.note = (
        f"{RUN_PROCESSES} client processes x {per_process} connections, {WINDOW:g} s windows "
        f"(201 replies, none failed to start), median of {runs}; baseline: one process, "
        "Popen(/bin/true, stdin/stdout pipes, stderr=STDOUT, start_new_session=True), "
        f"reaped in batches of 64; {bench.startup.rsplit('; ', 1)[-1]}; "
        + costs.note(statistics.median(figure.baseline_runs), os.cpu_count() or 1)
    )
    return figure


def isolated_jobs_started(bench: Bench) -> Figure:
    """Job starts with isolation on (a uid per user, PID and mount
    namespaces), against a loop starting each job through the same spawner
    with the same isolation; the same with namespaces off beside it, and
    what each step costs."""
    figure = Figure(
        "isolated_jobs_per_s",
        f"jobs started/s with isolation on, POST /jobs/run of /bin/true, {RUN_CLIENTS} clients",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="loop through the same spawner, same isolation",
    )
    if not bench.jobs_get("PID and mount namespaces"):
        figure.error = f"isolation is not on here: {bench.startup}"
        return figure
    request = post_request("/jobs/run", run_body("/bin/true"))
    per_process = RUN_CLIENTS // RUN_PROCESSES

    def rate(port: int) -> float:
        result = load([LoadSpec(port, request, per_process, WINDOW)] * RUN_PROCESSES)
        check_replies(result, "run")
        return result.ok / result.window

    runs = bench.runs_at_least(3)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, lambda: rate(bench.server.port), lambda: run_isolated(isolated_rate, WINDOW)
    )
    with bench.own_worker("--no-namespaces") as (server, _):
        off = statistics.median(rate(server.port) for _ in range(runs))
    costs = run_isolated(step_costs)
    figure.extra = {"namespaces off jobs/s": off, "step costs us": costs}
    steps = "; ".join(f"{name} {cost:.0f} us" for name, cost in costs.items())
    figure.note = (
        f"median of {runs}; with --no-namespaces (a uid per user only): {off:,.0f} jobs/s; "
        f"per job, in the baseline loop: {steps}"
    )
    return figure


LIMITS = {"memory": "256M", "cpus": 1, "pids": 100}


def limited_jobs_started(bench: Bench) -> Figure:
    """Job starts that each ask for memory, CPU and process limits (the
    cgroup controllers set per job), against the plain Popen loop."""
    figure = Figure(
        "limited_jobs_per_s",
        f"jobs started/s with limits {LIMITS}, POST /jobs/run of /bin/true, {RUN_CLIENTS} clients",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="Popen loop, same pipes",
    )
    if "limits: none" in bench.startup:
        figure.error = f"no cgroup controllers here: {bench.startup}"
        return figure
    body = json.dumps({"command": "/bin/true", "limits": LIMITS}).encode()
    request = post_request("/jobs/run", body)
    per_process = RUN_CLIENTS // RUN_PROCESSES
    applied = bench.client.request("POST", "/jobs/run", json.loads(body)).json()["id"]
    state = bench.client.wait_final(applied)
    if state.get("unapplied_limits"):
        figure.error = f"limits not applied here: {state['unapplied_limits']}"
        return figure

    costs = StartCosts(bench.server_processes())
    specs = [LoadSpec(bench.server.port, request, per_process, WINDOW)] * RUN_PROCESSES
    runs = bench.runs_at_least(3)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs, lambda: costs.rate(specs), costs.popen_rate
    )
    figure.extra = costs.extra()
    where = bench.startup.split("limits: ")[-1]
    figure.note = (
        f"each job in its own cgroups with memory, cpu and pids set ({where}); "
        f"median of {runs}; baseline as for jobs_per_s; "
        + costs.note(statistics.median(figure.baseline_runs), os.cpu_count() or 1)
    )
    return figure
