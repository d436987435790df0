"""Equal small values share one instance; the table stays bounded."""

from __future__ import annotations

import pickle

import pytest

from worker.executor import interned as module
from worker.executor.interned import interned
from worker.protocol import Isolation, Limits


def test_equal_values_become_one_instance() -> None:
    a = interned(Limits(memory=1 << 20, pids=100))
    b = interned(Limits(memory=1 << 20, pids=100))
    assert a is b
    assert interned(Limits(memory=2 << 20)) is not a


def test_a_list_of_shared_values_pickles_each_once() -> None:
    one = interned(Isolation(61184, 61184, True, True, "host", True))
    many = [interned(Isolation(61184, 61184, True, True, "host", True)) for _ in range(100)]
    assert all(value is one for value in many)
    assert len(pickle.dumps(many, protocol=5)) < 2 * len(pickle.dumps([one], protocol=5)) + 300


def test_the_table_starts_afresh_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_VALUES", 3)
    monkeypatch.setattr(module, "_table", {})
    kept = [interned(Limits(pids=n)) for n in range(1, 4)]
    assert len(module._table) == 3
    interned(Limits(pids=99))
    assert len(module._table) == 1
    assert interned(Limits(pids=1)) == kept[0]  # equal still, a new instance
