"""Back-off after repeated failed logins, with an injected clock."""

from __future__ import annotations

import pytest

from worker.api.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_few_failures_are_free_then_each_one_doubles_the_wait_up_to_the_cap() -> None:
    clock = Clock()
    backoff = Backoff(free=3, first_wait=1.0, longest_wait=8.0, clock=clock)
    waits = []
    for _ in range(9):
        backoff.failed("k")
        waits.append(backoff.remaining("k"))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8, 8]


def test_the_wait_runs_out() -> None:
    clock = Clock()
    backoff = Backoff(free=0, first_wait=2.0, clock=clock)
    backoff.failed("k")
    clock.now += 1.5
    assert backoff.remaining("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert backoff.remaining("k") == 0


def test_keys_are_apart() -> None:
    backoff = Backoff(free=0, clock=Clock())
    backoff.failed(("uid", 65534, "alice"))
    assert backoff.remaining(("uid", 65534, "alice")) > 0
    assert backoff.remaining(("uid", 1000, "alice")) == 0
    assert backoff.remaining(("uid", 65534, "bob")) == 0


def test_a_success_clears_the_key() -> None:
    backoff = Backoff(free=0, clock=Clock())
    for _ in range(5):
        backoff.failed("k")
    backoff.succeeded("k")
    assert backoff.remaining("k") == 0
    backoff.failed("k")  # counted from the start again
    assert backoff.remaining("k") == 1.0


def test_failures_are_forgotten_after_a_quiet_while() -> None:
    clock = Clock()
    backoff = Backoff(free=1, first_wait=1.0, longest_wait=4.0, forget_after=60, clock=clock)
    for _ in range(4):
        backoff.failed("k")
    clock.now += 59
    backoff.failed("k")  # still remembered: the wait keeps growing
    assert backoff.remaining("k") == 4.0
    clock.now += 60
    assert backoff.remaining("k") == 0
    assert len(backoff) == 0
    backoff.failed("k")
    assert backoff.remaining("k") == 0  # a free failure again


def test_a_failure_that_lands_during_a_wait_never_shortens_it() -> None:
    clock = Clock()
    backoff = Backoff(free=0, first_wait=8.0, longest_wait=8.0, clock=clock)
    backoff.failed("k")
    clock.now += 1
    backoff.failed("k")
    assert backoff.remaining("k") == 8.0


def test_the_table_is_bounded_oldest_failure_first() -> None:
    clock = Clock()
    backoff = Backoff(free=0, max_keys=3, clock=clock)
    for key in ("a", "b", "c", "d"):
        backoff.failed(key)
        clock.now += 0.01
    assert len(backoff) == 3
    assert backoff.remaining("a") == 0
    assert all(backoff.remaining(key) > 0 for key in ("b", "c", "d"))


def test_old_keys_are_swept_as_new_ones_come() -> None:
    clock = Clock()
    backoff = Backoff(free=0, forget_after=10, clock=clock)
    for number in range(100):
        backoff.failed(f"made-up-{number}")
    clock.now += 11
    backoff.failed("fresh")
    assert len(backoff) == 1


def test_a_huge_number_of_failures_stays_at_the_cap() -> None:
    backoff = Backoff(free=0, first_wait=1.0, longest_wait=30.0, clock=Clock())
    for _ in range(5000):
        backoff.failed("k")
    assert backoff.remaining("k") == 30.0


def test_failures_are_counted_until_forgotten() -> None:
    clock = Clock()
    backoff = Backoff(forget_after=10, clock=clock)
    assert backoff.failures("k") == 0
    backoff.failed("k")
    backoff.failed("k")
    assert backoff.failures("k") == 2
    clock.now += 10
    assert backoff.failures("k") == 0
