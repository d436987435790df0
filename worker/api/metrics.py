"""``GET /metrics``: the Prometheus text format, by prometheus_client.

The API's own metrics (requests, 429s, failed logins, executor round trips)
live in a registry of this app's, never the library's global one. The
executor's counters come over the pipe in one ``Stats`` reply per scrape
and are turned into metrics as they are collected; the executor has no
metrics library of its own.

Label values are bounded: routes are the templates of registered routes
(anything else is "unmatched"), methods a fixed set, statuses three digits,
request types the protocol's, users those of the users file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse, HTTPResponse, raw

from worker.api.executor_client import ExecutorClient
from worker.api.gate import Gate
from worker.errors import WorkerError
from worker.protocol import GetStats, Stats

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
UNMATCHED = "unmatched"
# Scrapes within this long of the last executor answer reuse it, so a
# flood of scrapes costs the executor at most one request a second.
STATS_MAX_AGE = 1.0
STATS_TIMEOUT = 5.0
# Requests are answered in milliseconds to seconds; a kill takes its grace.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Long polls (WatchOutput, WaitJob) are answered within 30 s.
EXECUTOR_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)


class ApiMetrics:
    def __init__(self, executor: ExecutorClient) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "worker_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "worker_http_request_duration_seconds",
            "From a request's headers read to its reply's headers sent.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "worker_http_rate_limited",
            "429 answers, by the limit that refused: rate_limit, login or quota.",
            ["reason"],
            registry=self.registry,
        )
        self.failed_logins = Counter(
            "worker_failed_logins",
            "Requests with a wrong user name or password.",
            registry=self.registry,
        )
        self.executor_latency = Histogram(
            "worker_executor_request_duration_seconds",
            "Executor round trips, by request type (WatchOutput and WaitJob are long polls).",
            ["request"],
            buckets=EXECUTOR_BUCKETS,
            registry=self.registry,
        )
        self.executor = ExecutorCollector(executor)
        self.registry.register(self.executor)
        # The labelled children each reply counts into, found once per label
        # set: ``labels()`` takes a lock and builds a key on every call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._round_trips: dict[str, Any] = {}

    def hook(self, gate: Gate, executor: ExecutorClient) -> None:
        gate.on_failed_login = self.failed_logins.inc
        executor.on_round_trip = self.round_trip

    def round_trip(self, request: str, seconds: float) -> None:
        child = self._round_trips.get(request)
        if child is None:
            child = self._round_trips[request] = self.executor_latency.labels(request)
        child.observe(seconds)

    async def on_response(self, request: Request, response: BaseHTTPResponse) -> None:
        """Sanic response middleware: every reply, errors and streams included."""
        route, method = route_label(request), method_label(request.method)
        key = (route, method, response.status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(response.status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        began = getattr(request.stream, "perft0", None)  # Sanic's own start of the request
        if isinstance(began, float):
            children[1].observe(time.perf_counter() - began)

    def answered(self, request: Request, exc: Exception) -> None:
        """An error reply is going out: counts the 429s by which limit said so."""
        if isinstance(exc, WorkerError) and exc.http_status == 429:
            self.refused.labels(refusal_reason(request, exc)).inc()

    async def scrape(self, request: Request) -> HTTPResponse:
        await self.executor.refresh()
        return raw(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)

    def register(self, app: Sanic[Any, Any], gate: Gate) -> None:
        """Credentials as every route; outside the rate limit, so a scraper
        and its user's own requests never refuse each other."""
        app.add_route(gate.guard(self.scrape, limited=False), "/metrics", methods=["GET"])
        app.register_middleware(self.on_response, "response")


class ExecutorCollector(Collector):
    """The executor's ``Stats``, fetched before each scrape (or reused while
    fresh), as metric families; ``worker_executor_up`` says whether it answered."""

    def __init__(self, executor: ExecutorClient) -> None:
        self._executor = executor
        self._stats: Stats | None = None
        self._fetched = -STATS_MAX_AGE
        self._up = False
        self._asking: asyncio.Future[None] | None = None

    async def refresh(self) -> None:
        if time.monotonic() - self._fetched < STATS_MAX_AGE:
            return
        if self._asking is None:  # concurrent scrapes share one request
            self._asking = asyncio.ensure_future(self._fetch())
        asking = self._asking
        try:
            await asyncio.shield(asking)
        finally:
            if asking.done() and self._asking is asking:
                self._asking = None

    async def _fetch(self) -> None:
        try:
            self._stats = await self._executor.call(GetStats, Stats, timeout=STATS_TIMEOUT)
            self._up = True
        except WorkerError:
            self._stats, self._up = None, False
        self._fetched = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "worker_executor_up", "1 if the executor answered the last scrape.", int(self._up)
        )
        if self._stats is not None:
            yield from families(self._stats)


def families(stats: Stats) -> Iterator[Metric]:
    yield CounterMetricFamily("worker_jobs_started", "Jobs accepted.", stats.jobs_started)
    ended = CounterMetricFamily(
        "worker_jobs_ended",
        "Jobs that reached a final status, by status and reason "
        "(kill, timeout, signal, shutdown, oom, start_error or none).",
        labels=["status", "reason"],
    )
    for status, reason, count in stats.jobs_ended:
        ended.add_metric([status, reason], count)
    yield ended
    running = GaugeMetricFamily(
        "worker_jobs_running", "Jobs running now, by user.", labels=["user"]
    )
    for user, count in stats.running:
        running.add_metric([user], count)
    yield running
    kills = CounterMetricFamily(
        "worker_job_kills",
        "Kills started, by reason: kill (worker kill), timeout, signal (kill -s).",
        labels=["reason"],
    )
    for reason, count in stats.kills:
        kills.add_metric([reason], count)
    yield kills
    yield CounterMetricFamily(
        "worker_output_bytes", "Bytes of output jobs wrote.", stats.output_bytes
    )
    dropped = CounterMetricFamily(
        "worker_output_dropped_bytes",
        "Bytes of output dropped: past a job's cap, or to keep the output budget.",
        labels=["reason"],
    )
    dropped.add_metric(["cap"], stats.dropped_cap)
    dropped.add_metric(["budget"], stats.dropped_budget)
    yield dropped
    yield GaugeMetricFamily(
        "worker_output_kept_bytes", "Bytes of output held now.", stats.output_kept
    )


def route_label(request: Request) -> str:
    """The route as registered (``/jobs/<raw_id>/status``), never the path."""
    route = request.route
    if route is None:
        return UNMATCHED
    template = getattr(route, "raw_path", None) or request.uri_template or ""
    return "/" + str(template).lstrip("/")


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def refusal_reason(request: Request, exc: WorkerError) -> str:
    marked = getattr(request.ctx, "refused", None)
    if isinstance(marked, str):
        return marked
    return "quota" if exc.code == "quota_exceeded" else exc.code
