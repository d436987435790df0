"""Login refusals to one source go out at a bounded pace."""

from __future__ import annotations

import asyncio

import pytest

from worker.api.tarpit import Tarpit


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_an_occasional_refusal_goes_out_at_once() -> None:
    clock = Clock()
    tarpit = Tarpit(rate=10, clock=clock)
    for _ in range(5):
        assert tarpit.delay("uid 1000") == 0
        clock.now += 1


def test_a_burst_is_paced_one_turn_after_another() -> None:
    tarpit = Tarpit(rate=10, longest=20, clock=Clock())
    delays = [tarpit.delay("attacker") for _ in range(5)]
    assert delays == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])


def test_sources_are_paced_apart() -> None:
    tarpit = Tarpit(rate=10, clock=Clock())
    for _ in range(50):
        tarpit.delay("attacker")
    assert tarpit.delay("someone else") == 0


def test_no_refusal_waits_longer_than_the_longest_hold() -> None:
    clock = Clock()
    tarpit = Tarpit(rate=10, longest=2, clock=clock)
    delays = [tarpit.delay("attacker") for _ in range(1000)]
    assert max(delays) == pytest.approx(2)
    # Turns are never booked beyond the longest hold, so a pause of that
    # long clears the backlog however big the flood was.
    clock.now += 2
    assert tarpit.delay("attacker") == 0


def test_memory_is_one_entry_per_recent_source_and_bounded() -> None:
    clock = Clock()
    tarpit = Tarpit(rate=10, longest=1, max_sources=100, clock=clock)
    for number in range(1000):
        tarpit.delay(("connection", number))
    assert len(tarpit) == 100
    clock.now += 5
    tarpit.delay("late")
    assert len(tarpit) == 1


def test_hold_sleeps_for_the_turn_and_says_how_long() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> list[float]:
        tarpit = Tarpit(rate=4, clock=Clock(), sleep=sleep)
        return [await tarpit.hold("attacker") for _ in range(3)]

    assert asyncio.run(main()) == [0, 0.25, 0.5]
    assert slept == [0.25, 0.5]


def test_past_the_most_held_refusals_go_out_at_once() -> None:
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await release.wait()

    async def main() -> tuple[list[float], int]:
        tarpit = Tarpit(rate=1, most_held=2, clock=Clock(), sleep=sleep)
        assert await tarpit.hold("a") == 0  # the first goes out at once
        held = [asyncio.ensure_future(tarpit.hold("a")) for _ in range(2)]
        await asyncio.sleep(0)
        assert tarpit.held == 2
        beyond = await tarpit.hold("a")
        release.set()
        results = await asyncio.gather(*held)
        return [*results, beyond], tarpit.held

    results, left = asyncio.run(main())
    assert results == [1, 2, 0]
    assert left == 0
