"""Figures, their targets, the table and the JSON file."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Kind = Literal["ratio>=", "ratio<=", "<="]

# The same figure from a server with --no-namespaces --no-cgroups (a uid per
# user stays: a root server always switches), where the protections change it.
OFF_COLUMN = "isolation and limits off"


@dataclass(frozen=True)
class Target:
    kind: Kind
    value: float

    def text(self, unit: str) -> str:
        if self.kind == "ratio>=":
            return f">= {self.value:g}x baseline"
        if self.kind == "ratio<=":
            return f"<= {self.value:g}x baseline"
        return f"<= {self.value:g} {unit}"


@dataclass
class Figure:
    key: str
    title: str
    unit: str
    target: Target
    worker_runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    off_runs: list[float] = field(default_factory=list)  # the worker with isolation and limits off
    baseline_name: str = "-"
    note: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def worker(self) -> float | None:
        return statistics.median(self.worker_runs) if self.worker_runs else None

    @property
    def off(self) -> float | None:
        return statistics.median(self.off_runs) if self.off_runs else None

    @property
    def baseline(self) -> float | None:
        return statistics.median(self.baseline_runs) if self.baseline_runs else None

    @property
    def ratio(self) -> float | None:
        worker, baseline = self.worker, self.baseline
        if worker is None or not baseline:
            return None
        return worker / baseline

    @property
    def passed(self) -> bool | None:
        if self.error is not None or self.worker is None:
            return None
        if self.target.kind == "<=":
            return self.worker <= self.target.value
        ratio = self.ratio
        if ratio is None:
            return None
        if self.target.kind == "ratio>=":
            return ratio >= self.target.value
        return ratio <= self.target.value

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "figure": self.title,
            "unit": self.unit,
            "worker": self.worker,
            "baseline": self.baseline,
            "baseline_is": self.baseline_name,
            "ratio": self.ratio,
            "target": self.target.text(self.unit),
            "pass": self.passed,
            "protections_off": self.off,
            "runs": {
                "worker": self.worker_runs,
                "baseline": self.baseline_runs,
                "protections_off": self.off_runs,
            },
            "note": self.note,
            "error": self.error,
            "extra": self.extra,
        }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def table(figures: list[Figure], machine: dict[str, Any], settings: dict[str, Any]) -> Table:
    title = (
        f"worker benchmark: {machine['cores']} cores, {machine['cpu']}, "
        f"Python {machine['python']}, Linux {machine['kernel']}"
    )
    caption = "; ".join(f"{name}: {value}" for name, value in settings.items())
    grid = Table(title=title, caption=caption, show_lines=False)
    numbers = ("worker", "baseline", "ratio", OFF_COLUMN)
    for column in ("figure", "worker", "baseline", "ratio", "target", "result", OFF_COLUMN):
        grid.add_column(column, justify="right" if column in numbers else "left")
    for figure in figures:
        ratio = figure.ratio
        verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}
        result = verdict[figure.passed] if figure.error is None else "[red]error[/]"
        baseline = _number(figure.baseline, figure.unit)
        if figure.baseline is not None:
            baseline += f"\n[dim]{figure.baseline_name}[/]"
        grid.add_row(
            figure.title,
            _number(figure.worker, figure.unit),
            baseline,
            "-" if ratio is None else f"{ratio:.2f}x",
            figure.target.text(figure.unit) if figure.error is None else "-",
            result,
            _number(figure.off, figure.unit),
        )
    return grid


def show(figures: list[Figure], machine: dict[str, Any], settings: dict[str, Any]) -> None:
    console = Console(width=max(140, Console().width))
    console.print(table(figures, machine, settings))
    for figure in figures:
        if figure.error:
            console.print(f"[red]{figure.key}: could not be measured:[/] {figure.error}")
        elif figure.note:
            console.print(f"[dim]{figure.key}: {figure.note}[/]", highlight=False)


def write_json(
    path: Path, figures: list[Figure], machine: dict[str, Any], settings: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine,
        "settings": settings,
        "figures": [figure.as_json() for figure in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
