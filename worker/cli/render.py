"""What the CLI prints, through its Environment. Rich is imported only for
output meant for people (a terminal); pipes get plain text or bytes.

Job output and everything a job controls (its command, arguments and name)
is passed to Rich as ``Text``, never as markup.
"""

from __future__ import annotations

import json
import shlex

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from rich.text import Text

    from worker.cli.environment import Environment

STATUS_STYLE = {
    "running": "bold cyan",
    "completed": "bold green",
    "failed": "bold red",
    "killed": "bold yellow",
}


def command_line(job: dict[str, Any]) -> str:
    return shlex.join([str(job.get("command", "")), *map(str, job.get("args", []))])


def print_json(env: Environment, document: Any) -> None:
    """One compact JSON document, on one line."""
    env.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    env.stdout.flush()


def job_started(env: Environment, job_id: int, argv: list[str], name: str | None) -> None:
    from rich.text import Text

    ref = name or str(job_id)
    named = f" ({name})" if name else ""
    out = env.console()
    command = (shlex.join(argv), "dim")
    out.print(Text.assemble("Started job ", (str(job_id), "bold"), named, ": ", command))
    out.print(Text(f"  worker status {ref}   worker out -f {ref}   worker kill {ref}", "dim"))


def status_table(env: Environment, job: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from worker.cli import times

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Job", Text(str(job["id"])))
    if job.get("name"):
        table.add_row("Name", Text(str(job["name"])))
    table.add_row("Status", status_text(job))
    if job.get("reason"):
        table.add_row("Reason", Text(str(job["reason"])))
    if job.get("error"):
        table.add_row("Error", Text(str(job["error"]), "red"))
    table.add_row("Command", Text(command_line(job)))
    table.add_row("PID", Text(_or_dash(job.get("pid"))))
    started = job.get("started_at")
    shown = f"{times.when(started)}  ({times.ago(started)})" if started else "-"
    table.add_row("Started", Text(shown))
    table.add_row("Ended", Text(times.when(job.get("ended_at"))))
    took = times.duration(started, job.get("ended_at"))
    if took:
        table.add_row("Duration", Text(took))
    env.console().print(table)


def status_plain(env: Environment, job: dict[str, Any]) -> None:
    """``key: value`` lines, for pipes and scripts (Rich is not loaded)."""
    lines = [
        ("job", job["id"]),
        ("name", job.get("name")),
        ("status", job.get("status")),
        ("exit_code", job.get("exit_code")),
        ("signal", job.get("signal")),
        ("reason", job.get("reason")),
        ("error", job.get("error")),
        ("pid", job.get("pid")),
        ("command", command_line(job)),
        ("started_at", job.get("started_at")),
        ("ended_at", job.get("ended_at")),
    ]
    env.stdout.write("".join(f"{key}: {_or_dash(value)}\n" for key, value in lines))


def status_text(job: dict[str, Any]) -> Text:
    """``completed (exit code 0)``, ``killed (signal 15)``, styled."""
    from rich.text import Text

    status = str(job.get("status", "?"))
    text = Text()
    text.append(status, STATUS_STYLE.get(status, ""))
    if job.get("exit_code") is not None:
        text.append(f" (exit code {job['exit_code']})")
    elif job.get("signal") is not None:
        text.append(f" (signal {job['signal']})")
    elif job.get("error"):
        text.append(" (could not start)")
    return text


def output_header(
    env: Environment, job: dict[str, Any], size: int | None, dropped: int = 0
) -> None:
    """A rule naming the job; ``size`` None when the output follows live."""
    from rich.rule import Rule
    from rich.text import Text

    named = f" ({job['name']})" if job.get("name") else ""
    title = Text.assemble(
        (f"job {job['id']}{named}", "bold"), "  ", command_line(job), "  ", status_text(job)
    )
    out = env.console()
    out.print(Rule(title, align="left", style="dim"))
    if dropped:
        out.print(Text(f"({dropped} older bytes were dropped: output cap reached)", "dim"))
    if size == 0:
        out.print(
            Text("(no output yet)" if job.get("status") == "running" else "(no output)", "dim")
        )


def note(env: Environment, message: str) -> None:
    """A line for the person at the terminal, on stderr (stdout is the job's)."""
    from rich.text import Text

    env.console(stderr=True).print(Text(f"worker: {message}", "dim"))


def note_finished(env: Environment, job: dict[str, Any]) -> None:
    from rich.text import Text

    line = Text.assemble(("worker: ", "dim"), (f"job {job['id']} ", "dim"), status_text(job))
    if job.get("reason"):
        line.append(f" ({job['reason']})", "dim")
    if job.get("error"):
        line.append(f": {job['error']}", "dim")
    env.console(stderr=True).print(line)


def finished(env: Environment, job: dict[str, Any]) -> None:
    """``job 3 completed (exit code 0)``, on stdout (`worker wait`)."""
    from rich.text import Text

    line = Text.assemble(("job ", ""), (str(job["id"]), "bold"), " ", status_text(job))
    if job.get("reason"):
        line.append(f" ({job['reason']})", "dim")
    if job.get("error"):
        line.append(f": {job['error']}", "dim")
    env.console().print(line)


def ask(env: Environment, prompt: str) -> str:
    env.stderr.write("\n" + prompt)
    env.stderr.flush()
    return env.stdin.readline()


def killed(env: Environment, job: dict[str, Any], how: str = "") -> None:
    from rich.text import Text

    status = str(job.get("status"))
    styled = (status, STATUS_STYLE.get(status, ""))
    line = Text.assemble("Job ", (str(job["id"]), "bold"), " ", styled)
    if how:
        line.append(f" ({how})", "dim")
    env.console().print(line)


def error(env: Environment, message: str) -> None:
    from rich.text import Text

    env.console(stderr=True).print(Text.assemble(("Error: ", "bold red"), message))


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)
