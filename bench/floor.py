"""The floor under job starts: the kernel work of the server's jobs alone,
done by a small C loop (bench/floor.c) with no Python, no server, no
asyncio, several loops at once.

Each job gets what the server's jobs get here: the cgroups its default
limits need (made under trees locked as the server's are, the limits
written to the files the server writes), another uid, PID and mount
namespaces with /proc and /tmp mounted, an init, its counters read and its
cgroups removed after it. Where the ceiling (bench/ceiling.py) shows what
the server's own Python code for a job allows, the floor shows what the
kernel allows: what a server adds per job has to fit in what the cores
have left at the target once the floor's cost per job is paid.

Run in a fresh interpreter of its own (``procs.run_isolated``), as root.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE

from bench import ROOT
from bench.isolation import NOBODY
from bench.machine import busy_cpu_seconds
from worker.executor.cgroups import CgroupTree
from worker.executor.controllers import Controllers
from worker.executor.hierarchies import V1_NAMES
from worker.executor.limits import CONTROLLER, given, host_defaults

SOURCE = ROOT / "bench" / "floor.c"


def floor_costs(
    seconds: float, loops: int, uid: bool, namespaces: bool
) -> tuple[float, float, str]:
    """Jobs started per second by ``loops`` C loops at once, the machine's
    busy CPU time per job (ms), and what each job got."""
    with tempfile.TemporaryDirectory() as scratch:
        program = _build(Path(scratch))
        tree, _ = CgroupTree.detect()
        try:
            controllers = Controllers.detect(tree)
            try:
                specs, got = _specs(tree, controllers)
                flags = [str(NOBODY if uid else -1), "1" if namespaces else "0", *specs]

                def argv(loop: int) -> list[str]:
                    return [str(program), str(seconds), str(loop), *flags]

                return (*_run(argv, loops), ", ".join(got) or "no cgroups")
            finally:
                controllers.remove()
        finally:
            if tree is not None:
                tree.remove()


def _build(where: Path) -> Path:
    program = where / "floor"
    compiler = shlex.split(os.environ.get("CC") or "cc")
    built = subprocess.run(
        [*compiler, "-O2", "-std=gnu11", "-Wall", "-o", str(program), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"cannot build {SOURCE.name}: {built.stderr.strip()[-300:]}")
    return program


def _specs(tree: CgroupTree | None, controllers: Controllers) -> tuple[list[str], list[str]]:
    """The floor's arguments for the default limits, as controllers.py
    writes and reads them, and a description."""
    specs: list[str] = []
    got: list[str] = []
    v1: dict[Path, list[str]] = {}
    if tree is not None:
        specs += [f"born={tree.base}", *_reads(tree.base, "cpu.stat")]
        got.append("born in a v2 cgroup")
    elif (cpuacct := controllers.v1.get("cpuacct")) is not None:  # CPU time, as v2 gives
        v1[cpuacct] = _reads(cpuacct, "cpuacct.usage")
    for name, value in given(host_defaults()).items():
        controller = CONTROLLER[name]
        if tree is not None and controller in controllers.v2_enabled:
            specs += _files(name, int(value), tree.base, v2=True)
            got.append(f"{name} (v2)")
        elif (base := controllers.v1.get(V1_NAMES[controller])) is not None:
            v1.setdefault(base, []).extend(_files(name, int(value), base, v2=False))
            got.append(f"{name} (v1)")
    for base, files in v1.items():
        specs += [f"join={base}", *files]
    return specs, got


def _files(name: str, value: int, base: Path, v2: bool) -> list[str]:
    """What controllers.JobControllers writes for a default limit (its
    swap limit where the host has one: a job's cgroup has the files its
    parent has), and the counter its usage reads."""
    if name == "memory":
        if v2:
            swap = ["set=memory.swap.max=0"] if (base / "memory.swap.max").exists() else []
            return [f"set=memory.max={value}", *swap, *_reads(base, "memory.peak")]
        swap_file = "memory.memsw.limit_in_bytes"
        swap = [f"set={swap_file}={value}"] if (base / swap_file).exists() else []
        peak = _reads(base, "memory.max_usage_in_bytes")
        return [f"set=memory.limit_in_bytes={value}", *swap, *peak]
    if name == "pids":
        return [f"set=pids.max={value}", *_reads(base, "pids.peak")]
    raise ValueError(f"the floor does not know the default limit {name!r}")


def _reads(base: Path, counter: str) -> list[str]:
    """The counter read after each job, where the kernel has it (as the
    server's usage reads it where it can)."""
    return [f"read={counter}"] if (base / counter).exists() else []


def _run(argv: Callable[[int], list[str]], loops: int) -> tuple[float, float]:
    busy = busy_cpu_seconds()
    begin = time.perf_counter()
    runs: list[subprocess.Popen[str]] = []
    try:
        for loop in range(loops):
            runs.append(subprocess.Popen(argv(loop), stdout=PIPE, stderr=PIPE, text=True))
        outputs = [run.communicate() for run in runs]
    finally:  # never leave a loop making cgroups behind
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    elapsed = time.perf_counter() - begin
    used = busy_cpu_seconds() - busy
    failures = [
        err.strip() for (_, err), run in zip(outputs, runs, strict=True) if run.returncode != 0
    ]
    if failures:
        raise RuntimeError(f"{len(failures)} of {loops} floor loops failed: {failures[0]}")
    started = sum(int(out) for out, _ in outputs)
    return started / elapsed, 1000 * used / started
