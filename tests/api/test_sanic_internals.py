"""The few Sanic internals the API's streaming leans on, all of them in
worker/api/streaming.py: the chunked framing, ending it with trailers, and
the response timeout of a follow. pyproject pins Sanic to the versions these
hold for; this test fails loudly, naming what moved, before a newer Sanic
can quietly turn a follow into one that times out or a trailer into a
broken reply."""

from __future__ import annotations

from importlib.metadata import version

import pytest

sanic = pytest.importorskip("sanic")

from sanic.http.constants import Stage  # noqa: E402
from sanic.http.http1 import Http  # noqa: E402
from sanic.server.protocols.http_protocol import HttpProtocol  # noqa: E402

CHANGED = "Sanic's streaming internals changed: revisit worker/api/streaming.py"


def test_sanic_is_a_version_the_pin_allows() -> None:
    major = int(version("sanic").split(".")[0])
    assert 24 <= major < 26, f"sanic {version('sanic')}: {CHANGED}"


def test_the_chunked_writer_is_where_interim_looks_for_it() -> None:
    assert callable(getattr(Http, "http1_response_chunked", None)), CHANGED
    assert {"response_func", "stage", "protocol"} <= set(Http.__slots__), CHANGED
    assert Stage.IDLE.name == "IDLE", CHANGED


def test_the_response_timeout_is_a_per_connection_attribute() -> None:
    assert "response_timeout" in HttpProtocol.__slots__, CHANGED
