"""Failed logins are logged by name and source, never the password, and a
flood is a few lines: the first at once, the rest counted per window."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from worker.api.loginlog import FailedLogins


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def flood(logins: FailedLogins) -> None:
    for _ in range(50):
        logins.record(basic("alice", "hunter2"), ("uid", 1000))
    logins.record(basic("bob", "hunter2"), ("uid", 1001))
    logins.record("Bearer x", ("uid", 1001))  # not a login with a name: not counted
    await asyncio.sleep(0.15)  # the window ends


def test_a_flood_is_a_few_lines_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    asyncio.run(flood(FailedLogins(window=0.1)))
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "failed login for user 'alice' from uid 1000",
        "failed login for user 'bob' from uid 1001",
        "49 more failed logins for user 'alice' from uid 1000 in the last 0.1 s",
    ]
    assert not any("hunter2" in line for line in caplog.text.splitlines())
    assert caplog.records[-1].count == 49  # type: ignore[attr-defined]
