"""What the CLI prints. Rich is imported only for output meant for people.

Job output and everything a job controls (its command and arguments) is
passed to Rich as ``Text``, never as markup.
"""

from __future__ import annotations

import shlex
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {
    "running": "bold cyan",
    "completed": "bold green",
    "failed": "bold red",
    "killed": "bold yellow",
}


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def console(stderr: bool = False, width: int | None = None) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def command_line(job: dict[str, Any]) -> str:
    return shlex.join([str(job.get("command", "")), *map(str, job.get("args", []))])


def job_started(job_id: int, argv: list[str]) -> None:
    from rich.text import Text

    line = Text.assemble(
        ("Started job ", ""), (str(job_id), "bold"), ": ", (shlex.join(argv), "dim")
    )
    console().print(line)
    console().print(
        Text(f"  worker status {job_id}   worker out {job_id}   worker kill {job_id}", "dim")
    )


def status_table(job: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Job", Text(str(job["id"])))
    table.add_row("Status", status_text(job))
    if job.get("reason"):
        table.add_row("Reason", Text(str(job["reason"])))
    table.add_row("Command", Text(command_line(job)))
    table.add_row("PID", Text(_or_dash(job.get("pid"))))
    table.add_row("Started", Text(_when(job.get("started_at"))))
    table.add_row("Ended", Text(_when(job.get("ended_at"))))
    duration = _duration(job.get("started_at"), job.get("ended_at"))
    if duration:
        table.add_row("Duration", Text(duration))
    console().print(table)


def status_plain(job: dict[str, Any]) -> None:
    """``key: value`` lines, for pipes and scripts (Rich is not loaded)."""
    lines = [
        ("job", job["id"]),
        ("status", job.get("status")),
        ("exit_code", job.get("exit_code")),
        ("signal", job.get("signal")),
        ("reason", job.get("reason")),
        ("pid", job.get("pid")),
        ("command", command_line(job)),
        ("started_at", job.get("started_at")),
        ("ended_at", job.get("ended_at")),
    ]
    sys.stdout.write("".join(f"{key}: {_or_dash(value)}\n" for key, value in lines))


def status_text(job: dict[str, Any]) -> Any:
    from rich.text import Text

    status = str(job.get("status", "?"))
    text = Text()
    text.append(status, STATUS_STYLE.get(status, ""))
    if job.get("exit_code") is not None:
        text.append(f" (exit code {job['exit_code']})")
    elif job.get("signal") is not None:
        text.append(f" (signal {job['signal']})")
    return text


def output_header(job: dict[str, Any], size: int | None, dropped: int = 0) -> None:
    """A rule naming the job; ``size`` None when the output follows live."""
    from rich.rule import Rule
    from rich.text import Text

    title = Text.assemble(
        (f"job {job['id']}", "bold"), "  ", (command_line(job), ""), "  ", status_text(job)
    )
    out = console()
    out.print(Rule(title, align="left", style="dim"))
    if dropped:
        out.print(Text(f"({dropped} older bytes were dropped: output cap reached)", "dim"))
    if size == 0:
        out.print(
            Text("(no output yet)" if job.get("status") == "running" else "(no output)", "dim")
        )


def job_table(jobs: list[dict[str, Any]], more: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    if not jobs:
        console().print(Text("no jobs", "dim"))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "STATUS", "EXIT", "STARTED", "DURATION"):
        table.add_column(
            column, no_wrap=True, justify="right" if column in ("ID", "EXIT") else "left"
        )
    table.add_column("COMMAND", no_wrap=True, overflow="ellipsis")
    for job in jobs:
        status = str(job.get("status"))
        code = job.get("exit_code")
        exit_text = (
            str(code)
            if code is not None
            else (f"sig {job['signal']}" if job.get("signal") else "-")
        )
        table.add_row(
            Text(str(job["id"])),
            Text(status, STATUS_STYLE.get(status, "")),
            Text(exit_text),
            Text(_when(job.get("started_at"))),
            Text(_duration(job.get("started_at"), job.get("ended_at")) or "-"),
            Text(command_line(job)),
        )
    # A pipe has no width: keep each job on one line, as `ps` does.
    out = console() if stdout_is_terminal() else console(width=1000)
    out.print(table)
    if more:
        console(stderr=True).print(Text("(older jobs not shown: --limit N or --all)", "dim"))


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr (stdout is the job's)."""
    from rich.text import Text

    console(stderr=True).print(Text(f"worker: {message}", "dim"))


def note_finished(job: dict[str, Any]) -> None:
    from rich.text import Text

    line = Text.assemble(("worker: ", "dim"), (f"job {job['id']} ", "dim"), status_text(job))
    if job.get("reason"):
        line.append(f" ({job['reason']})", "dim")
    console(stderr=True).print(line)


def ask(prompt: str) -> str:
    sys.stderr.write("\n" + prompt)
    sys.stderr.flush()
    return sys.stdin.readline()


def raw(data: bytes) -> None:
    """Write bytes to stdout exactly as given."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def killed(job_id: int, status: str) -> None:
    from rich.text import Text

    console().print(
        Text.assemble("Job ", (str(job_id), "bold"), " ", (status, STATUS_STYLE[status]))
    )


def error(message: str) -> None:
    from rich.text import Text

    console(stderr=True).print(Text.assemble(("Error: ", "bold red"), message))


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _when(value: str | None) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else None
    if finish is None:
        from datetime import UTC

        finish = datetime.now(UTC)
    seconds = max(0.0, (finish - begin).total_seconds())
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
