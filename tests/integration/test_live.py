"""Following output live: before, during and after, many readers, stalled readers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import psutil

from tests.integration.conftest import CA, JOB_PYTHON, Server, start_server, stop_server
from tests.integration.follow_client import Heads, client_context, follow

MiB = 1 << 20

# Writes "<seq> <send time>\n" every 10 ms, 200 lines, after waiting for a go.
TICKER = """
import sys, time
sys.stdin.readline()
for i in range(200):
    print(i, repr(time.time()), flush=True)
    time.sleep(0.01)
"""


def _follow(server: Server, job_id: int, offset: int = 0) -> bytes:
    query = "follow=true" + (f"&offset={offset}" if offset else "")
    result = asyncio.run(follow(server.port, f"/jobs/{job_id}/out?{query}", client_context()))
    assert result.status == 200
    return bytes(result.data)


def test_follower_before_during_and_after_the_output(server: Server) -> None:
    job_id = server.run_job("sh", "-c", "read go; for i in 1 2 3; do echo line $i; sleep 0.2; done")
    expected = b"line 1\nline 2\nline 3\n"

    async def three_followers() -> list[bytes]:
        context = client_context()
        path = f"/jobs/{job_id}/out?follow=true"
        heads = Heads()
        before = asyncio.create_task(follow(server.port, path, context, heads=heads))
        await heads.wait_for(1)  # subscribed, and waiting before any output
        server.request("POST", f"/jobs/{job_id}/stdin", raw_body=b"go\n")
        while b"line 1" not in server.request("GET", f"/jobs/{job_id}/out?format=raw").body:
            await asyncio.sleep(0.02)
        during = asyncio.create_task(follow(server.port, path, context))
        results = await asyncio.gather(before, during)
        return [bytes(r.data) for r in results]

    before, during = asyncio.run(three_followers())
    assert before == during == expected
    assert server.wait_final(job_id)["status"] == "completed"
    assert _follow(server, job_id) == expected  # after: the whole output, then the end
    assert _follow(server, job_id, offset=7) == expected[7:]


def test_follow_of_unknown_job_is_404_before_any_stream(server: Server) -> None:
    reply = server.request("GET", "/jobs/999999/out?follow=true")
    assert (reply.status, reply.json()) == (404, {"error": "job 999999 not found"})
    other = server.run_job("sleep", "5", user="bob")
    assert server.request("GET", f"/jobs/{other}/out?follow=true").status == 404
    server.request("PUT", f"/jobs/{other}/kill", user="bob")


def test_a_thousand_followers_get_every_byte_in_time(server: Server) -> None:
    job_id = server.run_job(JOB_PYTHON, "-c", TICKER)
    followers = 1000

    async def everyone() -> tuple[list[bytes | BaseException], list[float]]:
        context = client_context()
        path = f"/jobs/{job_id}/out?follow=true"
        heads = Heads()
        tasks = [
            asyncio.create_task(follow(server.port, path, context, heads=heads))
            for _ in range(followers)
        ]
        # Every follower subscribed before the job starts writing.
        await heads.wait_for(followers)
        server.request("POST", f"/jobs/{job_id}/stdin", raw_body=b"go\n")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        latencies = []
        for result in results:
            if not isinstance(result, BaseException):
                latencies.extend(_latencies(result.data, result.arrivals))
        outputs = [r if isinstance(r, BaseException) else bytes(r.data) for r in results]
        return outputs, sorted(latencies)

    outputs, latencies = asyncio.run(everyone())
    errors = [o for o in outputs if isinstance(o, BaseException)]
    assert errors == []
    lines = [line.split()[0] for line in bytes(outputs[0]).splitlines()]  # type: ignore[arg-type]
    assert lines == [str(i).encode() for i in range(200)]
    assert len(set(outputs)) == 1  # every follower got exactly the same bytes
    assert len(latencies) == followers * 200
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"follow latency with {followers} followers: p99 {p99 * 1000:.1f} ms")
    # The target is 100 ms (measured tightly in bench/); here a generous bound.
    assert p99 < 1.0, p99


def _latencies(data: bytearray, arrivals: list[tuple[float, int]]) -> list[float]:
    """For each line: when the chunk that completed it arrived, minus the
    time the job wrote into it."""
    ends, position = [], 0
    for line in bytes(data).split(b"\n")[:-1]:
        position += len(line) + 1
        ends.append((position, float(line.split()[1])))
    found, index = [], 0
    for arrived, total in arrivals:
        while index < len(ends) and ends[index][0] <= total:
            found.append(arrived - ends[index][1])
            index += 1
    return found


def test_a_stalled_follower_costs_bounded_memory_and_slows_nobody(tmp_path: Path) -> None:
    cap = 8 * MiB
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--max-output", str(cap))
    try:
        job_id = server.run_job("sh", "-c", "read go; head -c 104857600 /dev/zero; echo end")
        stalled = _stalled_follower(server.port, job_id)
        executor = psutil.Process(server.executor_pid)
        api = psutil.Process(server.api_pid)
        rss_before = executor.memory_info().rss + api.memory_info().rss

        async def reader(heads: Heads) -> bytes:
            path = f"/jobs/{job_id}/out?follow=true"
            result = await follow(server.port, path, client_context(), heads=heads)
            return bytes(result.data)

        async def run() -> tuple[bytes, float]:
            heads = Heads()
            task = asyncio.create_task(reader(heads))
            await heads.wait_for(1)
            server.request("POST", f"/jobs/{job_id}/stdin", raw_body=b"go\n")
            slowest = 0.0
            while not task.done():
                started = time.monotonic()
                assert server.request("GET", f"/jobs/{job_id}/status").status == 200
                slowest = max(slowest, time.monotonic() - started)
                await asyncio.sleep(0.05)
            return await task, slowest

        data, slowest = asyncio.run(run())
        assert data.endswith(b"end\n")
        assert len(data) >= cap  # the live reader kept up beyond the cap
        growth = executor.memory_info().rss + api.memory_info().rss - rss_before
        assert growth < 8 * cap, growth  # two capped copies and buffers, not 100 MiB
        assert slowest < 2.0, slowest
        assert server.wait_final(job_id)["status"] == "completed"
        stalled.close()
    finally:
        stop_server(server.process)


def _stalled_follower(port: int, job_id: int) -> ssl.SSLSocket:
    """A follower that sends its request and then never reads a byte."""
    context = ssl.create_default_context(cafile=str(CA))
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        f"GET /jobs/{job_id}/out?follow=true HTTP/1.1\r\nHost: localhost\r\n"
        "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n".encode()
    )
    return tls


def test_a_follow_of_a_quiet_job_answers_at_once(server: Server) -> None:
    # Headers first, before any output: a client knows at once that it is
    # following (and Sanic's response timeout is not left to fire on it).
    job_id = server.run_job("sh", "-c", "read go; echo late")
    context = ssl.create_default_context(cafile=str(CA))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(
            f"GET /jobs/{job_id}/out?follow=true HTTP/1.1\r\nHost: localhost\r\n"
            "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        server.request("POST", f"/jobs/{job_id}/stdin", raw_body=b"go\n")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += tls.recv(4096)
        assert b"late\n" in rest
