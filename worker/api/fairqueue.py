"""The order in which waiting bcrypt checks get a worker.

Sources (a source is one Unix uid, see gate.py) take turns; within a source,
usernames take turns; within a username, checks go in the order they came. A
source has at most one check running at a time, so with two or more workers
no single source can occupy them all, and a source that starts waiting goes
to the back of the line of *sources*, not of checks: one turn per other busy
source is all it waits. Small bounds on what one username of a source, one
source and everyone together may leave waiting keep memory bounded and mean
that a flood fills only its own queues; past them ``push`` says no.

Pure bookkeeping, no I/O: checkpool.py runs what this hands out.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

PER_NAME = 2
PER_SOURCE = 8
TOTAL = 256


class _Source(Generic[T]):
    __slots__ = ("names", "waiting")

    def __init__(self) -> None:
        # Usernames in turn order, each with its checks in arrival order.
        self.names: OrderedDict[str, deque[T]] = OrderedDict()
        self.waiting = 0


class FairQueue(Generic[T]):
    def __init__(
        self, per_name: int = PER_NAME, per_source: int = PER_SOURCE, total: int = TOTAL
    ) -> None:
        self._per_name = per_name
        self._per_source = per_source
        self._total = total
        self._sources: dict[Hashable, _Source[T]] = {}
        self._turns: deque[Hashable] = deque()  # sources with checks waiting, none running
        self._running: set[Hashable] = set()
        self._waiting = 0

    def __len__(self) -> int:
        """Checks waiting (not those running)."""
        return self._waiting

    @property
    def sources(self) -> int:
        """Sources with anything waiting or running: what memory is held for."""
        return len(self._sources)

    def push(self, source: Hashable, name: str, item: T, ahead: bool = False) -> bool:
        """Queue ``item``; False, and nothing queued, past a bound. A name new
        to the source's queue goes to the back of its turns, or with ``ahead``
        (a name that has not been failing, say) to the front."""
        if self._waiting >= self._total:
            return False
        entry = self._sources.get(source)
        if entry is not None and entry.waiting >= self._per_source:
            return False
        queue = entry.names.get(name) if entry is not None else None
        if queue is not None and len(queue) >= self._per_name:
            return False
        if entry is None:
            entry = self._sources[source] = _Source()
        if queue is None:
            queue = entry.names[name] = deque()
            if ahead:
                entry.names.move_to_end(name, last=False)
        queue.append(item)
        entry.waiting += 1
        self._waiting += 1
        if entry.waiting == 1 and source not in self._running:
            self._turns.append(source)
        return True

    def pop(self) -> tuple[Hashable, T] | None:
        """The next check to run and its source, now counted as running;
        call ``done(source)`` when it ends. None if nothing may run."""
        if not self._turns:
            return None
        source = self._turns.popleft()
        entry = self._sources[source]
        name, queue = next(iter(entry.names.items()))
        item = queue.popleft()
        if queue:
            entry.names.move_to_end(name)
        else:
            del entry.names[name]
        entry.waiting -= 1
        self._waiting -= 1
        self._running.add(source)
        return source, item

    def done(self, source: Hashable) -> None:
        """The running check of ``source`` has ended."""
        self._running.discard(source)
        entry = self._sources.get(source)
        if entry is None:
            return
        if entry.waiting:
            self._turns.append(source)
        else:
            del self._sources[source]
