"""The server's log lines: text as before, or one JSON object per line
with the event's fields."""

from __future__ import annotations

import json
import logging

from worker.logs import JsonFormatter, TextFormatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("worker.executor", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_text_lines_name_the_process() -> None:
    line = TextFormatter("executor").format(record("job %d started", 3, job=3))
    assert line == "worker executor: job 3 started"
    assert TextFormatter("").format(record("stopped")) == "worker: stopped"


def test_json_lines_carry_the_fields() -> None:
    line = JsonFormatter("executor").format(record("job %d ended", 3, job=3, user="alice"))
    document = json.loads(line)
    assert document["level"] == "info"
    assert document["process"] == "executor"
    assert document["message"] == "job 3 ended"
    assert (document["job"], document["user"]) == (3, "alice")
    assert document["time"].endswith("Z")
    assert "\n" not in line
