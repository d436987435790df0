"""HTTP Basic authentication against a users file of bcrypt hashes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

import bcrypt
import pytest

from worker.api.auth import (
    BAD_CREDENTIALS,
    MAX_PASSWORD_BYTES,
    QUEUE_FULL_RETRY_MS,
    Authenticator,
    UserStore,
    parse_basic,
)
from worker.api.backoff import Backoff
from worker.api.checkpool import CheckPool
from worker.api.credentials import CredentialCache
from worker.api.fairqueue import FairQueue
from worker.errors import ConfigError, RateLimited, Unauthorized
from worker.resources import DEMO_USERS, demo_file

LONG_PASSWORD = b"p" * MAX_PASSWORD_BYTES  # exactly the limit: still allowed


def hashed(password: bytes) -> bytes:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=4))


@pytest.fixture(scope="module")
def store() -> UserStore:
    return UserStore(
        {
            "alice": hashed(b"wonderland"),
            "bob": hashed("bü:ilder".encode()),
            "carol": hashed(LONG_PASSWORD),
        }
    )


def basic(user: bytes | str, password: bytes | str) -> str:
    raw_user = user.encode() if isinstance(user, str) else user
    raw_password = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(raw_user + b":" + raw_password).decode("ascii")


# --- UserStore.load ---------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_valid_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    alice, bob = hashed(b"a").decode(), hashed(b"b").decode()
    path = write(
        tmp_path,
        f"# users\n\n   \nalice:{alice}\n  # indented comment\n\tbob:{bob}  \r\n\n",
    )
    users = UserStore.load(path)
    assert users.names == ["alice", "bob"]
    assert users.check("alice", b"a")
    assert users.check("bob", b"b")
    assert not users.check("alice", b"b")


def test_load_later_line_for_same_user_wins(tmp_path: Path) -> None:
    old, new = hashed(b"old").decode(), hashed(b"new").decode()
    users = UserStore.load(write(tmp_path, f"alice:{old}\nalice:{new}\n"))
    assert users.names == ["alice"]
    assert users.check("alice", b"new")
    assert not users.check("alice", b"old")


def test_load_shipped_demo_users() -> None:
    users = UserStore.load(demo_file(DEMO_USERS))
    assert users.names == ["alice", "bob"]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read users file"):
        UserStore.load(tmp_path / "nope")


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        UserStore.load(tmp_path)


def test_load_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_bytes(b"\xffalice:" + hashed(b"a") + b"\n")
    with pytest.raises(ConfigError):
        UserStore.load(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only a comment\n# and another\n"])
def test_load_file_without_users(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="no users"):
        UserStore.load(write(tmp_path, text))


@pytest.mark.parametrize(
    "line",
    [
        "alice",
        "alice:",
        ":$2b$04$abcdefghijklmnopqrstuuJvK0DFnLKZ8kXqYgmUHXQ7iFeF2CG3K",
        "alice:plaintext",
        "alice wonderland",
    ],
)
def test_load_bad_line_names_its_line_number(tmp_path: Path, line: str) -> None:
    good = hashed(b"b").decode()
    path = write(tmp_path, f"# header\nbob:{good}\n{line}\n")
    with pytest.raises(ConfigError, match=r":3: expected 'name:bcrypt-hash'"):
        UserStore.load(path)


# A malformed hash must be refused at start-up: accepted, it would make
# bcrypt raise on every login of that user.
@pytest.mark.parametrize("bad_hash", ["$2b$not-a-hash", "$2", "$2b$12$é"])
def test_load_refuses_malformed_hash(tmp_path: Path, bad_hash: str) -> None:
    with pytest.raises(ConfigError):
        UserStore.load(write(tmp_path, f"alice:{bad_hash}\n"))


# --- parse_basic ------------------------------------------------------------


def test_parse_basic_valid() -> None:
    assert parse_basic(basic("alice", "wonderland")) == ("alice", b"wonderland")


def test_parse_basic_password_may_contain_colons_and_any_bytes() -> None:
    assert parse_basic(basic("bob", b"a:b:\xff\x00")) == ("bob", b"a:b:\xff\x00")


def test_parse_basic_empty_password_and_unicode_user() -> None:
    assert parse_basic(basic("zoë", "")) == ("zoë", b"")


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "BaSiC"])
def test_parse_basic_scheme_is_case_insensitive(scheme: str) -> None:
    header = basic("alice", "x").replace("Basic", scheme, 1)
    assert parse_basic(header) == ("alice", b"x")


def test_parse_basic_tolerates_extra_spaces() -> None:
    encoded = base64.b64encode(b"alice:x").decode()
    assert parse_basic(f"Basic   {encoded}  ") == ("alice", b"x")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Basic    ",
        "Bearer abc.def",
        "Digest " + base64.b64encode(b"alice:x").decode(),
        "Basicx " + base64.b64encode(b"alice:x").decode(),
        "Basic not*base64",
        "Basic YWxpY2U6eA",  # padding missing
        "Basic ñañ=",
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic " + base64.b64encode(b":password").decode(),  # empty user
        "Basic " + base64.b64encode(b"\xff\xfe:password").decode(),  # non-UTF-8 user
    ],
)
def test_parse_basic_refuses(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        parse_basic(header)


# --- check ------------------------------------------------------------------


def test_check_right_password(store: UserStore) -> None:
    assert store.check("alice", b"wonderland") is True
    assert store.check("bob", "bü:ilder".encode()) is True


def test_check_password_of_exactly_the_limit(store: UserStore) -> None:
    assert store.check("carol", LONG_PASSWORD) is True


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("alice", b"Wonderland"),
        ("alice", b"wonderland "),
        ("alice", b""),
        ("alice", b"wonderland\x00"),
        ("bob", b"wonderland"),
        ("Alice", b"wonderland"),
        ("mallory", b"wonderland"),
        ("", b""),
    ],
)
def test_check_wrong_password_or_unknown_user(store: UserStore, user: str, password: bytes) -> None:
    assert store.check(user, password) is False


@pytest.mark.parametrize("user", ["carol", "alice", "nobody"])
def test_check_password_over_72_bytes_is_false_not_error(store: UserStore, user: str) -> None:
    # The first 72 bytes match carol's password: bcrypt would accept them if
    # the password were silently truncated.
    assert store.check(user, LONG_PASSWORD + b"x") is False
    assert store.check(user, b"z" * 10_000) is False


# --- authenticate -----------------------------------------------------------


async def _authenticate(store: UserStore, header: str | None) -> str:
    auth = Authenticator(store)
    try:
        return await auth.authenticate(header)
    finally:
        auth.close()


def test_verified_credentials_skip_bcrypt_and_wrong_ones_are_never_cached(
    store: UserStore,
) -> None:
    calls: list[tuple[str, bytes]] = []
    real_check = store.check

    def counting_check(user: str, password: bytes) -> bool:
        calls.append((user, password))
        return real_check(user, password)

    store.check = counting_check  # type: ignore[method-assign]

    async def main() -> None:
        auth = Authenticator(store)
        try:
            for _ in range(3):
                assert await auth.authenticate(basic("alice", "wonderland")) == "alice"
            for _ in range(2):
                with pytest.raises(Unauthorized):
                    await auth.authenticate(basic("alice", "wrong"))
            assert await auth.authenticate(basic("alice", "wonderland")) == "alice"
        finally:
            auth.close()

    asyncio.run(main())
    assert calls == [("alice", b"wonderland"), ("alice", b"wrong"), ("alice", b"wrong")]


def pool(per_name: int = 2, per_source: int = 8, workers: int = 1) -> CheckPool:
    """A pool whose sources never rest after a failure (rests have tests of
    their own), so these tests run at bcrypt's speed."""
    queue: FairQueue[object] = FairQueue(per_name=per_name, per_source=per_source)
    return CheckPool(workers, queue, rest=Backoff(free=10**6))  # type: ignore[arg-type]


def test_a_flood_of_checks_beyond_the_queue_is_turned_away(store: UserStore) -> None:
    async def main() -> list[BaseException | str]:
        auth = Authenticator(store, pool=pool(per_name=2), backoff=Backoff(free=100))
        try:
            attempts = [auth.authenticate(basic("alice", f"guess{i}")) for i in range(10)]
            return await asyncio.gather(*attempts, return_exceptions=True)
        finally:
            auth.close()

    results = asyncio.run(main())
    limited = [r for r in results if isinstance(r, RateLimited)]
    refused = [r for r in results if isinstance(r, Unauthorized)]
    # One running plus two waiting get a real check; the rest are refused
    # before any bcrypt work.
    assert len(refused) == 3 and len(limited) == 7
    assert all(r.retry_after_ms == QUEUE_FULL_RETRY_MS for r in limited)


class Source:
    """Stands for the gate's source lookup: says who asks, counts the asking."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return self.name


def counting(store: UserStore, calls: list[tuple[str, bytes]]) -> None:
    real_check = store.check

    def counting_check(user: str, password: bytes) -> bool:
        calls.append((user, password))
        return real_check(user, password)

    store.check = counting_check  # type: ignore[method-assign]


def test_repeated_failures_put_only_that_source_and_name_in_back_off() -> None:
    store = UserStore({"alice": hashed(b"wonderland"), "bob": hashed(b"builder")})
    calls: list[tuple[str, bytes]] = []
    counting(store, calls)
    attacker, victim = Source("uid 65534"), Source("uid 1000")

    async def main() -> None:
        auth = Authenticator(
            store, pool=pool(), backoff=Backoff(free=3, first_wait=60, longest_wait=60)
        )
        try:
            # Three failures are free; the fourth starts a wait.
            for n in range(4):
                with pytest.raises(Unauthorized):
                    await auth.authenticate(basic("alice", f"guess{n}"), attacker)
            for n in range(5):
                with pytest.raises(RateLimited) as refused:
                    await auth.authenticate(basic("alice", f"more{n}"), attacker)
                assert 59_000 < refused.value.retry_after_ms <= 60_000
            assert len(calls) == 4  # no bcrypt at all while waiting
            # Another uid logs in as alice, and the attacker still tries bob.
            assert await auth.authenticate(basic("alice", "wonderland"), victim) == "alice"
            with pytest.raises(Unauthorized):
                await auth.authenticate(basic("bob", "guess"), attacker)
        finally:
            auth.close()

    asyncio.run(main())


def test_hanging_up_before_the_answer_still_counts_the_failure() -> None:
    store = UserStore({"alice": hashed(b"wonderland")})
    attacker = Source("uid 65534")

    async def main() -> None:
        auth = Authenticator(store, pool=pool(), backoff=Backoff(free=2, first_wait=60))
        try:
            for n in range(3):
                attempt = asyncio.ensure_future(
                    auth.authenticate(basic("alice", f"guess{n}"), attacker)
                )
                await asyncio.sleep(0)  # the check is queued
                attempt.cancel()  # the client hung up
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt
                while auth._checks:  # its bcrypt check still runs to the end
                    await asyncio.sleep(0.01)
            with pytest.raises(RateLimited):
                await auth.authenticate(basic("alice", "guess9"), attacker)
        finally:
            auth.close()

    asyncio.run(main())


def test_verified_credentials_pass_even_from_a_source_in_back_off() -> None:
    store = UserStore({"alice": hashed(b"wonderland")})
    attacker = Source("uid 1000")

    async def main() -> None:
        auth = Authenticator(store, pool=pool(), backoff=Backoff(free=0, first_wait=60))
        try:
            assert await auth.authenticate(basic("alice", "wonderland"), attacker) == "alice"
            with pytest.raises(Unauthorized):
                await auth.authenticate(basic("alice", "guess"), attacker)
            with pytest.raises(RateLimited):
                await auth.authenticate(basic("alice", "guess"), attacker)
            # The same uid, the same name: but these credentials are verified.
            asked = attacker.asked
            assert await auth.authenticate(basic("alice", "wonderland"), attacker) == "alice"
            assert attacker.asked == asked  # no source lookup was even needed
        finally:
            auth.close()

    asyncio.run(main())


def test_a_success_clears_the_back_off() -> None:
    store = UserStore({"alice": hashed(b"wonderland")})
    me = Source("uid 1000")

    async def main() -> None:
        auth = Authenticator(
            store, cache=CredentialCache(ttl=0.0), pool=pool(), backoff=Backoff(free=2)
        )
        try:
            for attempt in range(4):
                for _ in range(2):  # two typos: still free
                    with pytest.raises(Unauthorized):
                        await auth.authenticate(basic("alice", "typo"), me)
                assert await auth.authenticate(basic("alice", "wonderland"), me) == "alice", attempt
        finally:
            auth.close()

    asyncio.run(main())


def test_authenticate_returns_user(store: UserStore) -> None:
    assert asyncio.run(_authenticate(store, basic("alice", "wonderland"))) == "alice"


@pytest.mark.parametrize(
    "header",
    [
        basic("alice", "wrong"),
        basic("mallory", "wonderland"),
        basic("carol", LONG_PASSWORD + b"!"),
    ],
)
def test_authenticate_bad_credentials(store: UserStore, header: str) -> None:
    with pytest.raises(Unauthorized) as info:
        asyncio.run(_authenticate(store, header))
    # Same message whether the user exists or not.
    assert info.value.message == BAD_CREDENTIALS


@pytest.mark.parametrize("header", [None, "", "Bearer x", "Basic !!!"])
def test_authenticate_malformed_header(store: UserStore, header: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        asyncio.run(_authenticate(store, header))
    assert info.value.http_status == 401


def test_simultaneous_logins_with_the_same_credentials_share_one_check(
    store: UserStore,
) -> None:
    calls: list[str] = []
    real_check = store.check

    def counting_check(user: str, password: bytes) -> bool:
        calls.append(user)
        return real_check(user, password)

    store.check = counting_check  # type: ignore[method-assign]

    async def main() -> list[str]:
        auth = Authenticator(store, pool=pool(per_name=1))
        try:
            logins = [auth.authenticate(basic("alice", "wonderland")) for _ in range(20)]
            return await asyncio.gather(*logins)
        finally:
            auth.close()

    assert asyncio.run(main()) == ["alice"] * 20
    assert calls == ["alice"]
