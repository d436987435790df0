"""Fixtures of the executor's tests on this host's real cgroups."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.executor.cgroups import CgroupTree


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    """A private cgroup v2 tree of the test's own (skipped where none can be
    made), removed afterwards."""
    found, why = CgroupTree.detect()
    if found is None:
        pytest.skip(f"no usable cgroup v2 here: {why}")
    yield found
    found.remove()
