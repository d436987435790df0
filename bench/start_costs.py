"""What starting a job costs the whole machine, against the Popen loop."""

from __future__ import annotations

import statistics

import psutil

from bench.baselines import popen_costs
from bench.figures_api import check_replies
from bench.httpload import LoadSpec, load
from bench.machine import busy_cpu_seconds
from bench.procs import run_isolated

WINDOW = 3.0  # seconds of load per run


class StartCosts:
    """The machine's busy CPU time per job started (ms): the worker's (every
    process and the kernel's, the load clients' own time left out) and the
    Popen loop's, with the part that was its /bin/true processes' own."""

    def __init__(self, processes: dict[str, int] | None = None) -> None:
        self.worker: list[float] = []
        self.baseline: list[float] = []
        self.true: list[float] = []
        # The server's own processes, by name: their part of the cost.
        self._processes = {name: psutil.Process(pid) for name, pid in (processes or {}).items()}
        self.own: dict[str, list[float]] = {name: [] for name in self._processes}

    def rate(self, specs: list[LoadSpec]) -> float:
        """Jobs started per second by ``specs``' load, its cost noted."""
        began: list[float] = []
        own: dict[str, float] = {}

        def ready() -> None:
            began.append(busy_cpu_seconds())
            own.update((name, _cpu(process)) for name, process in self._processes.items())

        result = load(specs, on_ready=ready)
        used = busy_cpu_seconds() - began[0] - result.cpu
        check_replies(result, "run")
        jobs = max(1, result.statuses.get(201, 0))
        self.worker.append(1000 * used / jobs)
        for name, process in self._processes.items():
            self.own[name].append(1000 * (_cpu(process) - own[name]) / jobs)
        return result.ok / result.window

    def popen_rate(self) -> float:
        rate, machine, true = run_isolated(popen_costs, WINDOW)
        self.baseline.append(machine)
        self.true.append(true)
        return rate

    def note(self, baseline_rate: float, cores: int) -> str:
        budget = 1000 * cores / (0.5 * baseline_rate)
        own = ", ".join(
            f"{name} {statistics.median(costs):.2f} ms" for name, costs in self.own.items()
        )
        return (
            f"machine CPU per job: {statistics.median(self.worker):.2f} ms"
            f"{f' ({own})' if own else ''}, against "
            f"{statistics.median(self.baseline):.2f} ms in the Popen loop, "
            f"{statistics.median(self.true):.2f} ms of which is /bin/true's own process; "
            f"at 0.5x of the loop, {cores} cores leave at most {budget:.2f} ms per job"
        )

    def extra(self) -> dict[str, float]:
        return {
            "machine cpu ms per job": statistics.median(self.worker),
            "baseline machine cpu ms per job": statistics.median(self.baseline),
            "baseline /bin/true own cpu ms": statistics.median(self.true),
            **{f"{name} cpu ms per job": statistics.median(c) for name, c in self.own.items()},
        }


def _cpu(process: psutil.Process) -> float:
    """A process's own CPU seconds, all its threads', not its children's."""
    times = process.cpu_times()
    return times.user + times.system
