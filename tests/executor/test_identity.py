"""Who each user's jobs run as, and their directories (real files, as root
where it matters; the uids themselves are only numbers here)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.executor import identity
from worker.users import BCRYPT_COST

HASH = "$2b$" + str(BCRYPT_COST) + "$" + "a" * 53


@pytest.fixture
def place() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="worker-identity-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def users_file(place: Path, *lines: str) -> Path:
    path = place / "users"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="allocating uids takes root")


@root_only
def test_each_user_gets_a_uid_of_their_own_kept_across_restarts(place: Path) -> None:
    users = users_file(place, f"alice:{HASH}", f"bob:{HASH}", f"x/../evil:{HASH}")
    state = place / "state"
    first = identity.prepare(users, state, (500_000, 500_009))
    alice, bob, odd = (first.of(name) for name in ("alice", "bob", "x/../evil"))
    assert first.multi_user
    assert len({alice.uid, bob.uid, odd.uid}) == 3
    assert all(500_000 <= i.uid <= 500_009 for i in (alice, bob, odd))  # type: ignore[operator]
    assert alice.gid == alice.uid and alice.login == "alice"
    again = identity.prepare(users, state, (500_000, 500_009))
    assert again.of("alice") == alice and again.of("bob") == bob
    # Private directories, owned by each; the state directory root's and unlistable.
    for who in (alice, bob, odd):
        info = who.home.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (who.uid, 0o700)
        assert who.home.parent == state / "users"
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    assert stat.S_IMODE((state / "uids").stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="restart the server"):
        first.of("carol")


@root_only
def test_an_account_named_in_the_users_file_is_used(place: Path) -> None:
    users = users_file(place, f"alice:{HASH}:nobody")
    alice = identity.prepare(users, place / "state", (500_000, 500_009)).of("alice")
    assert (alice.uid, alice.login) == (65534, "nobody")
    with pytest.raises(ConfigError, match="never run as root"):
        identity.prepare(users_file(place, f"alice:{HASH}:root"), place / "s2", (1, 2))
    with pytest.raises(ConfigError, match="no Unix account"):
        identity.prepare(users_file(place, f"alice:{HASH}:no-such-acct"), place / "s3", (1, 2))


@root_only
def test_a_full_range_is_a_clear_error(place: Path) -> None:
    users = users_file(place, f"alice:{HASH}", f"bob:{HASH}")
    with pytest.raises(ConfigError, match="no free uid left in 500000-500000"):
        identity.prepare(users, place / "state", (500_000, 500_000))


def test_numbers_taken_by_accounts_or_other_users_are_skipped() -> None:
    with pytest.raises(ConfigError, match="no free uid"):
        identity._allocate("alice", (0, 0), set())  # root's
    first = identity._allocate("alice", (500_000, 500_001), set())
    other = identity._allocate("alice", (500_000, 500_001), {first})
    assert {first, other} == {500_000, 500_001}


def test_single_tenant_when_not_root(place: Path) -> None:
    users = users_file(place, f"alice:{HASH}")
    found = identity.prepare(users, place / "state", (1, 2), root=False)
    alice = found.of("alice")
    assert not found.multi_user and alice.uid is None
    assert alice.home.is_dir() and stat.S_IMODE(alice.home.stat().st_mode) == 0o700
