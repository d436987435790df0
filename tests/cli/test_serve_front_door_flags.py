"""`worker serve` flags of the API's front door, down to its configuration."""

from __future__ import annotations

import pytest

from worker.cli.parser import parse
from worker.cli.serve_command import serve_config
from worker.config import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MIN_BODY_RATE,
)
from worker.errors import UsageError


def test_defaults() -> None:
    api = serve_config(parse(["serve"])).api
    assert api.max_connections == DEFAULT_MAX_CONNECTIONS == 4096
    assert api.max_connections_per_peer == DEFAULT_MAX_CONNECTIONS_PER_PEER == 2048
    assert api.handshake_timeout == DEFAULT_HANDSHAKE_TIMEOUT == 5
    assert api.header_timeout == DEFAULT_HEADER_TIMEOUT == 10
    assert api.min_body_rate == DEFAULT_MIN_BODY_RATE == 16384


def test_given() -> None:
    argv = [
        "serve",
        "--max-connections", "100",
        "--max-connections-per-peer", "10",
        "--handshake-timeout", "0.4",
        "--header-timeout", "500ms",
        "--min-body-rate", "1000",
    ]  # fmt: skip
    api = serve_config(parse(argv)).api
    assert (api.max_connections, api.max_connections_per_peer) == (100, 10)
    assert (api.handshake_timeout, api.header_timeout) == (0.4, 0.5)
    assert api.min_body_rate == 1000


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-connections", "0"],
        ["--max-connections-per-peer", "-1"],
        ["--handshake-timeout", "0"],
        ["--header-timeout", "soon"],
        ["--min-body-rate", "0"],
    ],
)
def test_refused(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(["serve", *argv])


def test_the_handshake_deadline_is_never_longer_than_the_header_deadline() -> None:
    api = serve_config(parse(["serve", "--header-timeout", "2"])).api
    assert (api.handshake_timeout, api.header_timeout) == (2.0, 2.0)
