"""The OpenAPI document cannot drift from the app: every route the served
app registers is documented with its methods, every documented one exists,
and the document is valid OpenAPI 3.1."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from sanic import Sanic

from worker.api.openapi import DOCUMENT
from worker.api.process import _prepare
from worker.config import ApiConfig
from worker.resources import DEMO_CERT, DEMO_KEY, DEMO_USERS, demo_file

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def app() -> Iterator[Sanic[Any, Any]]:
    """The app as `worker serve` builds it (process.py), front door and all,
    so that a route registered anywhere on the way is seen."""
    config = ApiConfig(
        "127.0.0.1", 0, demo_file(DEMO_USERS), demo_file(DEMO_CERT), demo_file(DEMO_KEY)
    )
    ours, theirs = socket.socketpair()
    built, listener, _ = _prepare(config, ours, 1024)
    try:
        yield built
    finally:
        Sanic.unregister_app(built)
        for sock in (listener, ours, theirs):
            with contextlib.suppress(OSError):
                sock.close()


def _shape(path: str) -> str:
    """A path with its parameters unnamed: /jobs/{id} and /jobs/<raw_id:str> alike."""
    path = "/" + path.lstrip("/")
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def registered(app: Sanic[Any, Any]) -> set[tuple[str, str]]:
    return {
        (_shape(route.path), method.upper())
        for route in app.router.routes
        for method in route.methods
    }


def documented() -> set[tuple[str, str]]:
    return {
        (_shape(path), method.upper())
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in _METHODS
    }


def test_every_registered_route_is_documented(app: Sanic[Any, Any]) -> None:
    missing = registered(app) - documented()
    assert not missing, f"routes without documentation: {sorted(missing)}"


def test_every_documented_route_exists(app: Sanic[Any, Any]) -> None:
    extra = documented() - registered(app)
    assert not extra, f"documented but not served: {sorted(extra)}"


def test_the_comparison_sees_a_difference(app: Sanic[Any, Any]) -> None:
    """The two sets are compared in one shape: a route renamed would show."""
    assert ("/jobs/{}/status", "GET") in registered(app)
    assert ("/jobs/{}/status", "GET") in documented()
    assert ("/jobs/{}/status", "POST") not in registered(app)


def test_the_document_is_valid_openapi_31() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    # The same JSON the route serves, checked against the OpenAPI 3.1
    # meta-schema by schemathesis (jsonschema-rs underneath).
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(DOCUMENT)))
    schema.validate()


def test_an_invalid_document_is_refused() -> None:
    broken = json.loads(json.dumps(DOCUMENT))
    broken["paths"]["/health"]["get"]["responses"]["200"]["content"] = {"x": {"oops": 1}}
    with pytest.raises(Exception, match="oops"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_error_reply_is_the_error_shape() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            for status, reply in operation["responses"].items():
                if int(status) >= 400:
                    schema = reply["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method)


def test_only_health_and_the_document_need_no_credentials() -> None:
    assert DOCUMENT["security"] == [{"basic": []}]
    open_ = {
        path
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if method in _METHODS and operation.get("security") == []
    }
    assert open_ == {"/health", "/openapi.json"}
