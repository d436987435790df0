"""Several whole runs of the benchmark as one Markdown table.

    python -m bench.combine run1.json run2.json run3.json

Each figure shows the median of its per-run medians and, beside it, the
spread of those medians (min-max), so a reader sees how far a figure moved
between whole runs. The verdict is that of the median.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

from bench.report import OFF_COLUMN


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value >= 100:
        text = f"{value:,.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def _spread(values: list[float | None], unit: str, ratio: bool = False) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    if ratio:
        return f"{min(known):.2f}-{max(known):.2f}x"
    return f"{_number(min(known), '').strip()}-{_number(max(known), unit).strip()}"


def combine(runs: list[dict[str, Any]]) -> str:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for figure in run["figures"]:
            by_key.setdefault(figure["key"], []).append(figure)
    lines = [
        "| figure | worker (spread) | baseline (spread) | ratio (spread) | target | result "
        f"| {OFF_COLUMN} (spread) |",
        "|---|---|---|---|---|---|---|",
    ]
    for figures in by_key.values():
        first = figures[0]
        unit = first["unit"]
        workers = [f["worker"] for f in figures]
        baselines = [f["baseline"] for f in figures]
        ratios = [f["ratio"] for f in figures]
        offs = [f.get("protections_off") for f in figures]
        worker, baseline, ratio = _median(workers), _median(baselines), _median(ratios)
        off = "-"
        if _median(offs) is not None:
            off = f"{_number(_median(offs), unit)} ({_spread(offs, unit)})"
        verdict = _verdict(first["target"], worker, ratio)
        base = "-"
        if baseline is not None:
            base = f"{_number(baseline, unit)} ({_spread(baselines, unit)}; {first['baseline_is']})"
        lines.append(
            f"| {first['figure']} | {_number(worker, unit)} ({_spread(workers, unit)}) | {base} "
            f"| {'-' if ratio is None else f'{ratio:.2f}x ({_spread(ratios, unit, True)})'} "
            f"| {first['target']} | {verdict} | {off} |"
        )
    return "\n".join(lines)


def _verdict(target: str, worker: float | None, ratio: float | None) -> str:
    """``target`` as report.Target.text wrote it: ">= 0.5x baseline",
    "<= 2x baseline" or "<= 5 ms"."""
    found = re.match(r"(>=|<=) ([\d.]+)(x baseline)?", target)
    value = ratio if found and found.group(3) else worker
    if found is None or value is None:
        return "-"
    limit = float(found.group(2))
    met = value >= limit if found.group(1) == ">=" else value <= limit
    return "pass" if met else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.combine", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="results JSON of whole runs")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.runs]
    print(combine(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
