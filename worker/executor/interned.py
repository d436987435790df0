"""One shared instance per distinct value of the small frozen values every
job carries (its isolation, its applied limits, its refusals): most jobs of
a server have the same few, so a retained job costs a pointer for each, and
a page of jobs pickles each value once (pickle's memo) instead of per job."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

# Distinct values kept; past that the table starts afresh (values are small
# and still shared by the jobs holding them, only not with new ones).
MAX_VALUES = 4096

_table: dict[object, object] = {}


def interned(value: T) -> T:
    """The shared instance equal to ``value``."""
    found = _table.get(value)
    if found is not None:
        return found  # type: ignore[return-value]
    if len(_table) >= MAX_VALUES:
        _table.clear()
    _table[value] = value
    return value
