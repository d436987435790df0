"""The API against its own OpenAPI document, fuzzed by schemathesis.

A live `worker serve` on loopback, real credentials (alice) and the shipped
CA. Every generated request, valid or not, must get a status the document
lists, a body (and headers) that match it, and never a 5xx. Bounded: a few
examples per operation, derandomized so that a run is repeatable.

Jobs started here are real. The fuzzed ``command`` is narrowed to a few that
end at once and run nothing else (``echo`` prints its arguments; ``env``
would run them), so that no request waits on a job that never ends
(``?wait=true``, ``?follow=true``); the job sandbox (a uid of its own,
namespaces) holds the rest. Job references are mostly small numbers, which
name jobs this test started: kill, stdin and delete reach those.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import CA, USERS, Server, start_server, stop_server
from worker.api.openapi import DOCUMENT

pytestmark = pytest.mark.slow

EXAMPLES = 40  # per operation
HARMLESS = ["true", "false", "echo", "no-such-command"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzzable() -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    run = document["components"]["schemas"]["RunRequest"]["properties"]
    run["command"] = {"type": "string", "enum": HARMLESS}
    # No body above --max-body: the server answers 413 and closes while the
    # client still sends, which `requests` reports as a broken connection
    # instead of reading the reply (test_bad_input.py covers 413 itself).
    run["args"] = {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 16}
    stdin = document["paths"]["/jobs/{id}/stdin"]["post"]["requestBody"]["content"]
    stdin["application/octet-stream"]["schema"]["maxLength"] = 4096
    return json.loads(json.dumps(document))


schema = schemathesis.openapi.from_dict(fuzzable())
schema.config.generation.update(
    max_examples=EXAMPLES, deterministic=True, with_security_parameters=False
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fuzz"), "--rate-limit-ms", "0")
    yield server
    stop_server(server.process)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
def test_the_api_answers_as_documented(case: Any, live: Server) -> None:
    case.call_and_validate(
        base_url=live.url,
        auth=("alice", USERS["alice"]),
        verify=str(CA),
        timeout=20,
        checks=CHECKS,
    )


def test_the_document_is_served(live: Server, tmp_path: Path) -> None:
    reply = live.request("GET", "/openapi.json", user=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == json.loads(json.dumps(DOCUMENT))
