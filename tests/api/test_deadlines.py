"""The deadline arithmetic: fixed points in time that bytes cannot move."""

from __future__ import annotations

import pytest

from worker.api.deadlines import SHORTEST_NAP, Deadlines
from worker.config import ApiConfig
from worker.errors import ConfigError

D = Deadlines(handshake=5, header=10, min_body_rate=1000, body_grace=5, keep_alive=30)


def test_a_head_is_due_a_fixed_time_after_it_started() -> None:
    assert D.head_due(100.0) == 110.0


def test_an_idle_connection_is_due_keep_alive_after_the_last_answer() -> None:
    assert D.idle_due(100.0) == 130.0


def test_a_body_gets_the_grace_then_must_keep_up_the_rate() -> None:
    assert D.body_due(100.0, 0) == 105.0  # nothing at all: due when the grace ends
    assert D.body_due(100.0, 2000) == 107.0  # 2 s worth of bytes buys 2 s more
    # A trickle: one byte a second never catches up with 1000 bytes/s.
    start = 100.0
    overdue = [s for s in range(1, 60) if start + s >= D.body_due(start, received=s)]
    assert overdue[0] == 6


def test_a_fast_body_is_never_due_while_it_flows() -> None:
    start = 100.0
    for second in range(1, 120):
        assert start + second < D.body_due(start, 2000 * second)


def test_checks_never_sleep_past_a_deadline_that_could_start_meanwhile() -> None:
    assert D.longest_nap == 5
    assert D.next_check(now=100.0, due=200.0) == 5
    assert D.next_check(now=100.0, due=101.5) == 1.5
    assert D.next_check(now=100.0, due=100.1) == SHORTEST_NAP


def test_checks_on_a_trickling_body_reach_its_deadline() -> None:
    """A body at half the rate: each check finds a little more, which moves
    the deadline a little further; the checks must still get there."""
    start, now, rate = 100.0, 100.0, D.min_body_rate / 2
    for _ in range(100):
        due = D.body_due(start, int(rate * (now - start)))
        if now >= due:
            break
        now += D.next_check(now, due)
    else:
        pytest.fail("the checks never caught up with a body at half the rate")
    assert now - start <= 2 * D.body_grace + 1


def test_taken_from_the_configuration() -> None:
    config = ApiConfig(
        host="127.0.0.1",
        port=1,
        users_file=None,  # type: ignore[arg-type]
        cert_file=None,  # type: ignore[arg-type]
        key_file=None,  # type: ignore[arg-type]
        handshake_timeout=1.5,
        header_timeout=2.5,
        min_body_rate=100,
        body_grace=3.5,
        keep_alive_timeout=4.5,
    )
    assert Deadlines.of(config) == Deadlines(1.5, 2.5, 100, 3.5, 4.5)


@pytest.mark.parametrize("field", ["handshake", "header", "min_body_rate", "body_grace"])
def test_a_deadline_must_be_positive(field: str) -> None:
    with pytest.raises(ConfigError):
        Deadlines(**{field: 0})
