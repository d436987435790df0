"""Figures about starting jobs: their rate (by default, with isolation on,
with limits asked), what each costs the machine, and the floor under them."""

from __future__ import annotations

import json
import os
import statistics

from bench.baselines import popen_costs
from bench.context import Bench, alternate
from bench.figures_api import check_replies
from bench.httpload import LoadSpec, load, post_request
from bench.isolation import FLOOR_IN_FLIGHT, floor_rate, isolated_rate, step_costs
from bench.machine import busy_cpu_seconds
from bench.procs import run_isolated
from bench.report import Figure, Target

RUN_CLIENTS = 16
RUN_PROCESSES = 2
WINDOW = 3.0


def run_body(command: str, *args: str) -> bytes:
    return json.dumps({"command": command, "args": list(args)}).encode()


class StartCosts:
    """The machine's busy CPU time per job started (ms): the worker's (every
    process and the kernel's, the load clients' own time left out) and the
    Popen loop's, with the part that was its /bin/true processes' own."""

    def __init__(self) -> None:
        self.worker: list[float] = []
        self.baseline: list[float] = []
        self.true: list[float] = []

    def rate(self, specs: list[LoadSpec]) -> float:
        """Jobs started per second by ``specs``' load, its cost noted."""
        began: list[float] = []
        result = load(specs, on_ready=lambda: began.append(busy_cpu_seconds()))
        used = busy_cpu_seconds() - began[0] - result.cpu
        check_replies(result, "run")
        self.worker.append(1000 * used / max(1, result.statuses.get(201, 0)))
        return result.ok / result.window

    def popen_rate(self) -> float:
        rate, machine, true = run_isolated(popen_costs, WINDOW)
        self.baseline.append(machine)
        self.true.append(true)
        return rate

    def note(self, baseline_rate: float, cores: int) -> str:
        budget = 1000 * cores / (0.5 * baseline_rate)
        return (
            f"machine CPU per job: {statistics.median(self.worker):.2f} ms, against "
            f"{statistics.median(self.baseline):.2f} ms in the Popen loop, "
            f"{statistics.median(self.true):.2f} ms of which is /bin/true's own process; "
            f"at 0.5x of the loop, {cores} cores leave at most {budget:.2f} ms per job"
        )

    def extra(self) -> dict[str, float]:
        return {
            "machine cpu ms per job": statistics.median(self.worker),
            "baseline machine cpu ms per job": statistics.median(self.baseline),
            "baseline /bin/true own cpu ms": statistics.median(self.true),
        }


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

    costs = StartCosts()

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
    if "PID and mount namespaces" not in bench.startup:
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

    costs = StartCosts()
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


def floor_jobs_started(bench: Bench) -> Figure:
    """The floor under jobs_per_s: a bare loop doing each job's kernel work
    as this server applies it (a uid of its own, the namespaces and the
    cgroups with the default limits, as the start-up line says), against
    the same Popen loop. What the server adds (TLS, HTTP, the pipe to the
    executor, its records) can only lower its figure below this one."""
    figure = Figure(
        "floor_jobs_per_s",
        "jobs started/s by a bare loop doing each job's kernel work as the server does "
        "(no service): the floor under jobs_per_s",
        "jobs/s",
        Target("ratio>=", 0.5),
        baseline_name="Popen loop, same pipes",
    )
    namespaces = "PID and mount namespaces" in bench.startup
    cgroups = "limits: none" not in bench.startup
    runs = bench.runs_at_least(3)
    figure.worker_runs, figure.baseline_runs = alternate(
        runs,
        lambda: run_isolated(floor_rate, WINDOW, namespaces, cgroups),
        lambda: run_isolated(popen_costs, WINDOW)[0],
    )
    applied = ", ".join(
        what
        for what, on in (
            ("a uid per job", "a uid per user" in bench.startup),
            ("namespaces", namespaces),
            ("cgroups", cgroups),
        )
        if on
    )
    figure.note = (
        f"{applied}; the server's spawner and cgroup code, each job's cgroups made, "
        f"joined, read and removed; {FLOOR_IN_FLIGHT} jobs in flight, "
        f"{WINDOW:g} s windows, median of {runs}"
    )
    return figure
