"""The metrics' own logic: the executor's Stats as metric families, parsed
back by prometheus_client's parser; bounded labels; which limit a 429 came
from; scrapes sharing one executor request; /metrics outside the rate limit."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_gate import Auth, Peers, connection, request
from worker.api.auth import BAD_CREDENTIALS
from worker.api.gate import Gate
from worker.api.metrics import ExecutorCollector, method_label, refusal_reason, route_label
from worker.api.ratelimit import RateLimiter
from worker.errors import ExecutorTimeout, QuotaExceeded, RateLimited, Unauthorized
from worker.protocol import GetStats, Stats

STATS = Stats(
    1,
    jobs_started=4,
    jobs_ended=(("completed", "none", 2), ("killed", "timeout", 1)),
    running=(("alice", 1), ("bob", 0)),
    kills=(("timeout", 1),),
    output_bytes=5000,
    dropped_cap=4000,
    dropped_budget=7,
    output_kept=993,
)


class Executor:
    """Answers GetStats after a turn of the loop, or fails; counts the asks."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked = 0

    async def call(self, make: Any, expect: Any, timeout: float | None = None) -> Stats:
        self.asked += 1
        assert make is GetStats and expect is Stats
        await asyncio.sleep(0)
        if self.fail:
            raise ExecutorTimeout("the executor did not answer")
        return STATS


def scrape(collector: ExecutorCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_stats_become_metrics() -> None:
    collector = ExecutorCollector(Executor())  # type: ignore[arg-type]
    asyncio.run(collector.refresh())
    got = scrape(collector)
    assert got[("worker_jobs_started_total", ())] == 4
    assert got[("worker_jobs_ended_total", (("reason", "none"), ("status", "completed")))] == 2
    assert got[("worker_jobs_ended_total", (("reason", "timeout"), ("status", "killed")))] == 1
    assert got[("worker_jobs_running", (("user", "alice"),))] == 1
    assert got[("worker_jobs_running", (("user", "bob"),))] == 0
    assert got[("worker_job_kills_total", (("reason", "timeout"),))] == 1
    assert got[("worker_output_bytes_total", ())] == 5000
    assert got[("worker_output_dropped_bytes_total", (("reason", "cap"),))] == 4000
    assert got[("worker_output_dropped_bytes_total", (("reason", "budget"),))] == 7
    assert got[("worker_output_kept_bytes", ())] == 993
    assert got[("worker_executor_up", ())] == 1


def test_an_unanswering_executor_is_down_and_its_metrics_absent() -> None:
    collector = ExecutorCollector(Executor(fail=True))  # type: ignore[arg-type]
    asyncio.run(collector.refresh())
    got = scrape(collector)
    assert got == {("worker_executor_up", ()): 0}


def test_concurrent_and_quick_scrapes_share_one_request() -> None:
    executor = Executor()
    collector = ExecutorCollector(executor)  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.gather(*(collector.refresh() for _ in range(50)))
        await collector.refresh()  # within STATS_MAX_AGE: the same answer

    asyncio.run(main())
    assert executor.asked == 1


def test_labels_are_bounded() -> None:
    assert method_label("GET") == "GET"
    assert method_label("BREW") == "other"
    unmatched = SimpleNamespace(route=None, uri_template=None)
    assert route_label(unmatched) == "unmatched"  # type: ignore[arg-type]
    matched = SimpleNamespace(route=SimpleNamespace(raw_path="jobs/<raw_id>/status"))
    assert route_label(matched) == "/jobs/<raw_id>/status"  # type: ignore[arg-type]


def test_which_limit_said_429() -> None:
    marked = SimpleNamespace(ctx=SimpleNamespace(refused="login"))
    plain = SimpleNamespace(ctx=SimpleNamespace())
    too_soon = RateLimited("too many requests", retry_after_ms=5)
    assert refusal_reason(marked, too_soon) == "login"  # type: ignore[arg-type]
    assert refusal_reason(plain, QuotaExceeded("too many jobs")) == "quota"  # type: ignore[arg-type]


def test_unlimited_requests_neither_spend_nor_need_the_allowance() -> None:
    limiter = RateLimiter(60_000)
    gate = Gate(Auth("alice", "alice", "alice"), limiter, Peers(1000))  # type: ignore[arg-type]
    conn = connection()

    async def main() -> None:
        first = request(conn, header="Basic x")  # another header each: no connection memo
        await gate.admit(first)  # type: ignore[arg-type]
        scrape_ = request(conn, header="Basic y")
        await gate.admit(scrape_, limited=False)  # type: ignore[arg-type]
        assert scrape_.ctx.user == "alice"
        assert not hasattr(scrape_.ctx, "limiter")  # no rate-limit headers on its reply
        again = request(conn, header="Basic z")
        try:
            await gate.admit(again)  # type: ignore[arg-type]
        except RateLimited:
            assert again.ctx.refused == "rate_limit"
        else:
            raise AssertionError("the limited request was let through")

    asyncio.run(main())


def test_failed_logins_are_told() -> None:
    told: list[None] = []
    gate = Gate(Auth(Unauthorized(BAD_CREDENTIALS)), RateLimiter(0), Peers(1000))  # type: ignore[arg-type]
    gate.on_failed_login = lambda: told.append(None)

    async def main() -> None:
        try:
            await gate.admit(request(connection()))  # type: ignore[arg-type]
        except Unauthorized:
            return
        raise AssertionError("a wrong password was let through")

    asyncio.run(main())
    assert len(told) == 1
