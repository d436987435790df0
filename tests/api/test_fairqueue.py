"""The order in which waiting bcrypt checks get a worker."""

from __future__ import annotations

from collections.abc import Hashable

from worker.api.fairqueue import FairQueue


def drain(queue: FairQueue[str], workers: int = 1) -> list[str]:
    """Run everything with ``workers`` workers, each check ending before the
    next one starts; the order in which the checks ran."""
    order: list[str] = []
    running: list[Hashable] = []
    while True:
        while len(running) < workers and (job := queue.pop()) is not None:
            source, item = job
            order.append(item)
            running.append(source)
        if not running:
            return order
        queue.done(running.pop(0))


def test_sources_take_turns_whatever_their_backlog() -> None:
    queue: FairQueue[str] = FairQueue(per_name=10, per_source=10)
    for number in range(5):
        assert queue.push("attacker", "alice", f"a{number}")
    assert queue.push("victim", "alice", "v")
    assert drain(queue) == ["a0", "v", "a1", "a2", "a3", "a4"]


def test_a_newcomer_waits_for_at_most_one_turn_of_each_other_source() -> None:
    queue: FairQueue[str] = FairQueue(per_name=10, per_source=10)
    for number in range(3):
        queue.push("attacker", f"name{number}", f"a{number}")
        queue.push("other", "bob", f"o{number}")
    first = queue.pop()
    assert first == ("attacker", "a0")
    queue.push("victim", "carol", "v")  # arrives while a0 runs
    queue.done("attacker")
    assert [queue.pop(), queue.pop()] == [("other", "o0"), ("victim", "v")]


def test_a_source_runs_one_check_at_a_time() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("attacker", "alice", "a0")
    queue.push("attacker", "bob", "a1")
    queue.push("victim", "carol", "v")
    assert queue.pop() == ("attacker", "a0")
    # A second worker is free, but the attacker already has one: the victim
    # gets it at once.
    assert queue.pop() == ("victim", "v")
    assert queue.pop() is None
    queue.done("attacker")
    assert queue.pop() == ("attacker", "a1")


def test_within_a_source_usernames_take_turns() -> None:
    queue: FairQueue[str] = FairQueue(per_name=3, per_source=10)
    for number in range(3):
        queue.push("uid", "alice", f"alice{number}")
    queue.push("uid", "bob", "bob0")
    queue.push("uid", "alice", "alice-late")  # refused: alice already has 3 waiting
    assert drain(queue) == ["alice0", "bob0", "alice1", "alice2"]


def test_bounds_refuse_and_leave_the_queue_unchanged() -> None:
    queue: FairQueue[str] = FairQueue(per_name=2, per_source=3, total=5)
    assert queue.push("a", "x", "1") and queue.push("a", "x", "2")
    assert not queue.push("a", "x", "3")  # per name
    assert queue.push("a", "y", "4")
    assert not queue.push("a", "z", "5")  # per source
    assert queue.push("b", "x", "6") and queue.push("b", "y", "7")
    assert not queue.push("c", "x", "8")  # in total
    assert len(queue) == 5
    assert sorted(drain(queue, workers=2)) == ["1", "2", "4", "6", "7"]


def test_nothing_is_kept_once_everything_has_run() -> None:
    queue: FairQueue[str] = FairQueue(per_name=5, per_source=50, total=1000)
    for source in range(20):
        for name in range(10):
            queue.push(source, f"made-up-{name}", f"{source}/{name}")
    assert len(drain(queue, workers=3)) == 200
    assert len(queue) == 0 and queue.sources == 0


def test_a_source_that_pushes_while_running_goes_to_the_back_after_it_ends() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "alice", "a0")
    assert queue.pop() == ("a", "a0")
    queue.push("a", "alice", "a1")
    queue.push("b", "bob", "b0")
    assert queue.pop() == ("b", "b0")  # a is still running
    queue.done("b")
    queue.done("a")
    assert queue.pop() == ("a", "a1")


def test_a_name_pushed_ahead_goes_first_among_its_sources_names() -> None:
    queue: FairQueue[str] = FairQueue(per_name=2, per_source=8)
    for name in ("alice", "carol"):
        queue.push("uid 0", name, f"{name}0")
        queue.push("uid 0", name, f"{name}1")
    queue.push("uid 0", "dave", "dave0", ahead=True)
    queue.push("uid 0", "alice", "refused", ahead=True)  # full: ahead changes nothing
    assert drain(queue) == ["dave0", "alice0", "carol0", "alice1", "carol1"]
