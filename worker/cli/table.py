"""The job list as a table: on a terminal, ID and STATUS never shrink and a
long COMMAND is cut first; on a pipe, one job per line, whole, as `ps`."""

from __future__ import annotations

from worker.cli import times
from worker.cli.environment import Environment
from worker.cli.render import STATUS_STYLE, command_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

# Columns that are never cut: each is as wide as its widest cell.
FIXED = ("ID", "NAME", "STATUS", "EXIT", "STARTED", "DURATION")
PIPE_WIDTH = 100_000  # a pipe has no width: never wrap, never cut
MIN_COMMAND = 12
GAP = 2  # between two columns


def _width(columns: list[str], widths: dict[str, int], command: int) -> int:
    fixed = sum(widths[c] for c in columns if c != "COMMAND")
    return fixed + command + GAP * (len(columns) - 1)


def job_table(env: Environment, jobs: list[dict[str, Any]], more: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    if not jobs:
        env.console().print(Text("no jobs", "dim"))
        return
    at = times.now()
    named = any(job.get("name") for job in jobs)
    rows = []
    for job in jobs:
        status = str(job.get("status"))
        cells = {
            "ID": Text(str(job["id"])),
            "NAME": Text(str(job.get("name") or "-")),
            "STATUS": Text(status, STATUS_STYLE.get(status, "")),
            "EXIT": Text(_exit(job)),
            "STARTED": Text(times.ago(job.get("started_at"), at)),
            "DURATION": Text(times.duration(job.get("started_at"), job.get("ended_at"), at) or "-"),
            "COMMAND": _command(job),
        }
        rows.append(cells)
    widths = {
        column: max(len(column), *(cells[column].cell_len for cells in rows))
        for column in (*FIXED, "COMMAND")
    }
    columns = [c for c in (*FIXED, "COMMAND") if named or c != "NAME"]
    room = env.console().width if env.stdout_isatty else PIPE_WIDTH
    # Fixed columns go, least useful first, while even a short COMMAND
    # would not fit beside them; ID and STATUS stay whatever the width.
    for optional in ("DURATION", "STARTED", "EXIT", "NAME"):
        if _width(columns, widths, MIN_COMMAND) <= room or optional not in columns:
            continue
        columns.remove(optional)
    command = max(MIN_COMMAND, room - _width(columns, widths, 0))
    widths["COMMAND"] = min(widths["COMMAND"], command)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    for column in columns:
        table.add_column(
            column,
            no_wrap=True,
            overflow="ellipsis",
            width=widths[column],
            justify="right" if column in ("ID", "EXIT") else "left",
        )
    for cells in rows:
        table.add_row(*(cells[column] for column in columns))
    # Never narrower than the fixed columns and a short COMMAND: lines wrap
    # on a very narrow terminal rather than lose a column.
    out = env.console(width=max(room, _width(columns, widths, widths["COMMAND"])))
    out.print(table)
    if more:
        env.console(stderr=True).print(Text("(older jobs not shown: --limit N or --all)", "dim"))


def _exit(job: dict[str, Any]) -> str:
    if job.get("exit_code") is not None:
        return str(job["exit_code"])
    if job.get("signal"):
        return f"sig {job['signal']}"
    return "-"


def _command(job: dict[str, Any]) -> Any:
    from rich.text import Text

    text = Text(command_line(job))
    if job.get("error"):  # it could not start: say why, after the command
        text.append(f"  ({job['error']})", "red")
    return text
