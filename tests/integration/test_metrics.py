"""GET /metrics on a real server: jobs that complete, fail and are killed, a
429 and a failed login, then a scrape parsed by prometheus_client's own parser,
asserting the values."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Server, start_server, stop_server

MAX_OUTPUT = 1000
WRITTEN = 5000

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[Server]:
    flags = ("--kill-grace", "1", "--rate-limit-ms", "0", "--max-running-per-user", "1")
    instance = start_server(tmp_path, *flags, "--max-output", str(MAX_OUTPUT))
    yield instance
    stop_server(instance.process)


class Scraper:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.scrapes = 0

    def scrape(self) -> Samples:
        reply = self.server.request("GET", "/metrics")
        assert reply.status == 200, reply.body
        assert {k.lower(): v for k, v in reply.headers.items()}["content-type"].startswith(
            "text/plain"
        )
        self.scrapes += 1
        samples: Samples = {}
        for family in text_string_to_metric_families(reply.body.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    def until(self, name: str, labels: dict[str, str], value: float) -> Samples:
        """Scrapes until the sample has this value (the executor's numbers
        may be up to a second old), within a generous deadline."""
        deadline = time.monotonic() + 10
        while True:
            samples = self.scrape()
            if value_of(samples, name, **labels) == value or time.monotonic() > deadline:
                return samples
            time.sleep(0.1)


def value_of(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_scrape_counts_jobs_requests_and_refusals(metered: Server) -> None:
    server, scraper = metered, Scraper(metered)
    code = f"import sys; sys.stdout.write('x' * {WRITTEN})"
    completed = server.run_job("python3", "-c", code)
    assert server.wait_final(completed)["status"] == "completed"
    failed = server.run_job("false")
    assert server.wait_final(failed)["status"] == "failed"
    killed = server.run_job("sleep", "60")
    quota = server.request("POST", "/jobs/run", {"command": "true", "args": []})
    assert quota.status == 429  # --max-running-per-user 1

    running = scraper.scrape()
    assert value_of(running, "worker_jobs_running", user="alice") == 1
    assert value_of(running, "worker_executor_up") == 1

    assert server.request("PUT", f"/jobs/{killed}/kill").status == 200
    wrong = base64.b64encode(b"alice:not-her-password").decode()
    refused = server.request("GET", "/jobs", user=None, headers={"Authorization": f"Basic {wrong}"})
    assert refused.status == 401
    assert server.request("GET", "/metrics", user=None).status == 401  # credentials needed

    got = scraper.until("worker_jobs_ended_total", {"status": "killed", "reason": "kill"}, 1)
    expected = {
        ("worker_jobs_started_total", ()): 3,
        ("worker_jobs_ended_total", (("status", "completed"), ("reason", "none"))): 1,
        ("worker_jobs_ended_total", (("status", "failed"), ("reason", "none"))): 1,
        ("worker_jobs_ended_total", (("status", "killed"), ("reason", "kill"))): 1,
        ("worker_jobs_running", (("user", "alice"),)): 0,
        ("worker_job_kills_total", (("reason", "kill"),)): 1,
        ("worker_output_bytes_total", ()): WRITTEN,
        ("worker_output_dropped_bytes_total", (("reason", "cap"),)): WRITTEN - MAX_OUTPUT,
        ("worker_output_dropped_bytes_total", (("reason", "budget"),)): 0,
        ("worker_output_kept_bytes", ()): MAX_OUTPUT,
        ("worker_http_rate_limited_total", (("reason", "quota"),)): 1,
        ("worker_failed_logins_total", ()): 1,
        ("worker_executor_up", ()): 1,
    }
    for (name, labels), value in expected.items():
        assert value_of(got, name, **dict(labels)) == value, (name, labels)

    def requests(route: str, method: str, status: int) -> float | None:
        return value_of(
            got, "worker_http_requests_total", route=route, method=method, status=str(status)
        )

    assert requests("/jobs/run", "POST", 201) == 3
    assert requests("/jobs/run", "POST", 429) == 1
    assert requests("/jobs/<raw_id>/kill", "PUT", 200) == 1
    assert requests("/jobs", "GET", 401) == 1
    assert requests("/metrics", "GET", 401) == 1
    # Every scrape but this one, whose reply was not yet sent when it was taken.
    assert requests("/metrics", "GET", 200) == scraper.scrapes - 1
    duration = "worker_http_request_duration_seconds"
    assert value_of(got, f"{duration}_count", route="/jobs/run", method="POST") == 4
    run_seconds = value_of(got, f"{duration}_sum", route="/jobs/run", method="POST")
    assert run_seconds is not None and 0 < run_seconds < 60
    inf = value_of(got, f"{duration}_bucket", route="/jobs/run", method="POST", le="+Inf")
    assert inf == 4
    executor = "worker_executor_request_duration_seconds_count"
    assert value_of(got, executor, request="RunJob") == 4  # the refused one too
    assert value_of(got, executor, request="KillJob") == 1
    # Bounded labels: a raw path never becomes one.
    routes = {dict(labels).get("route") for (name, labels) in got if name.startswith("worker_http")}
    assert not any(route and str(killed) in route for route in routes)
