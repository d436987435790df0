"""The supervisor loop fed scripted events, its actions recorded (as
honcho's manager tests do): no processes."""

from __future__ import annotations

import signal

import pytest

from worker.child import FAILED, READY
from worker.supervisor import Event, Exited, Said, Signalled, supervise

PIDS: dict[str, int | None] = {"api": 11, "executor": 12}


class Recorder:
    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def say(self, text: str) -> None:
        self.done.append(("say", text))

    def warn(self, text: str) -> None:
        self.done.append(("warn", text))

    def ready(self, line: str) -> None:
        self.done.append(("ready", line))

    def reap_orphans(self) -> None:
        self.done.append(("reap", ""))

    def kill_leftovers(self) -> None:
        self.done.append(("kill leftovers", ""))


def run(*events: Event) -> tuple[int, list[tuple[str, str]], list[Event]]:
    """The exit status, the actions, and the events left unread."""
    recorder, script = Recorder(), list(events)

    def feed() -> object:
        while script:
            yield script.pop(0)

    status = supervise(feed(), recorder, PIDS)  # type: ignore[arg-type]
    return status, recorder.done, script


UP = (Said(READY, "executor", "jobs: isolated"), Said(READY, "api", "https://127.0.0.1:8443"))


def test_both_ready_is_said_once_then_a_stop_signal_ends_it_cleanly() -> None:
    status, done, left = run(*UP, Signalled(frozenset({signal.SIGTERM})), Exited("api", 0))
    assert status == 0
    assert done == [
        (
            "say",
            "worker listening on https://127.0.0.1:8443 (api pid 11, executor pid 12); "
            "jobs: isolated",
        ),
        ("ready", "https://127.0.0.1:8443"),
    ]
    assert left == [Exited("api", 0)]  # nothing is read after the stop


def test_one_ready_child_is_not_ready_yet() -> None:
    status, done, _ = run(Said(READY, "api", "u"), Signalled(frozenset({signal.SIGINT})))
    assert status == 0 and done == []


def test_a_child_that_failed_to_start_stops_it_with_its_reason() -> None:
    status, done, _ = run(Said(FAILED, "api", "cannot listen on 127.0.0.1:1: Permission denied"))
    assert (status, done) == (1, [("warn", "cannot listen on 127.0.0.1:1: Permission denied")])


def test_the_executors_death_kills_its_jobs() -> None:
    status, done, _ = run(*UP, Exited("executor", -9))
    assert status == 1
    assert done[-2:] == [
        ("warn", "the executor process exited unexpectedly (exit code -9); killing its jobs "
         "and stopping"),
        ("kill leftovers", ""),
    ]  # fmt: skip


def test_the_apis_death_stops_it_without_a_kill_of_leftovers() -> None:
    status, done, _ = run(*UP, Exited("api", 1))
    assert status == 1
    assert done[-1] == ("warn", "the API process exited unexpectedly (exit code 1); stopping")
    assert ("kill leftovers", "") not in done


def test_sigchld_reaps_and_goes_on() -> None:
    chld = Signalled(frozenset({signal.SIGCHLD}))
    status, done, _ = run(chld, chld, Signalled(frozenset({signal.SIGCHLD, signal.SIGHUP})))
    assert status == 0 and done == [("reap", "")] * 3


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_every_stop_signal_stops(stop: signal.Signals) -> None:
    assert run(Signalled(frozenset({stop})))[0] == 0


def test_no_more_events_is_a_failure() -> None:
    assert run(*UP)[0] == 1
