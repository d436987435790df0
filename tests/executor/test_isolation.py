"""What isolation the host allows, found by probing for real."""

from __future__ import annotations

import asyncio
import os

import pytest

from worker.executor import isolation
from worker.executor.isolation import HostIsolation
from worker.executor.launcher import Spawner


def detect(want: bool) -> HostIsolation:
    async def main() -> HostIsolation:
        spawner = Spawner.start()
        try:
            return await isolation.detect(spawner, want)
        finally:
            spawner.close()

    return asyncio.run(main())


def test_namespaces_turned_off_are_said_to_be() -> None:
    found = detect(want=False)
    assert not found.namespaces
    assert "turned off (--no-namespaces)" in found.describe("cgroups")


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
def test_as_root_the_probe_finds_what_this_host_allows() -> None:
    found = detect(want=True)
    assert found.multi_user
    line = found.describe("one cgroup v2 per job")
    assert line.startswith("jobs: a uid per user, ")
    if found.namespaces:
        assert "PID and mount namespaces" in line
    else:  # refused here, and said so with the reason
        assert "no PID and mount namespaces: " in line


def test_without_root_it_is_single_tenant_in_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    found = detect(want=True)
    assert not (found.multi_user or found.namespaces or found.network_none)
    line = found.describe("no cgroups")
    assert "the server's own uid (single-tenant)" in line
    assert "single-tenant: not running as root" in line
