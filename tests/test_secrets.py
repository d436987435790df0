"""A root server refuses a key or users file that other uids could read."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import secrets
from worker.errors import ConfigError
from worker.resources import DEMO_KEY, DEMO_USERS, demo_file


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets.os, "geteuid", lambda: 0)


def test_private_files_pass(as_root: None, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    key.chmod(0o600)
    assert secrets.check({"TLS key": key}) == []


@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_files_others_can_read_are_refused(as_root: None, tmp_path: Path, mode: int) -> None:
    users = tmp_path / "users"
    users.write_text("u")
    users.chmod(mode)
    with pytest.raises(ConfigError, match=f"readable by other users.*chmod 600 {users}"):
        secrets.check({"users file": users})


def test_the_demo_material_is_allowed_with_a_warning(as_root: None) -> None:
    warnings = secrets.check({"users file": demo_file(DEMO_USERS), "TLS key": demo_file(DEMO_KEY)})
    if not warnings:
        pytest.skip("the demo files are not readable by others here")
    assert "DEMO" in warnings[0] and "worker certs" in warnings[0]


def test_single_tenant_servers_check_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(secrets.os, "geteuid", lambda: 1000)
    open_file = tmp_path / "key"
    open_file.write_text("k")
    open_file.chmod(0o644)
    assert secrets.check({"TLS key": open_file}) == []
