"""Output read as JSON and the job list come in pages, so no request can
make the API or the executor hold much more than one page."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import CA, Server, start_server, stop_server

MiB = 1 << 20


def test_output_pages_add_up_to_exactly_what_was_written(server: Server) -> None:
    # 3 MiB of text whose characters are 1, 2 and 3 bytes long, so that
    # some page ends inside a character.
    script = "import sys; sys.stdout.write(('aé€' * 200_000)[:500_000] * 3)"
    job = server.run_job("python3", "-c", script)
    assert server.wait_final(job)["status"] == "completed"
    text, offset, pages = "", 0, 0
    while True:
        page = server.request("GET", f"/jobs/{job}/out?offset={offset}").json()
        assert page["offset"] == offset and page["next_offset"] - offset <= MiB
        text += page["output"]
        offset = page["next_offset"]
        pages += 1
        if page["complete"]:
            break
    expected = ("aé€" * 200_000)[:500_000] * 3
    assert text == expected  # no character was split and replaced
    assert offset == page["size"] == len(expected.encode())
    assert pages == 3


def test_invalid_bytes_read_as_json_by_many_clients_stay_small(tmp_path: Path) -> None:
    """0xFF bytes once became six-character escapes: 64 MiB of them, read
    by four clients, took the API to 1.7 GB and an OOM kill."""
    server = start_server(tmp_path, "--rate-limit-ms", "0")
    try:
        api = psutil.Process(server.api_pid)
        job = server.run_job("sh", "-c", "head -c 33554432 /dev/zero | tr '\\0' '\\377'")
        assert server.wait_final(job, timeout=60)["status"] == "completed"
        before = api.memory_info().rss
        sizes: list[int] = []
        peak = [before]
        done = threading.Event()

        def read(offset: int) -> None:
            reply = server.request("GET", f"/jobs/{job}/out?offset={offset}&limit={4 * MiB}")
            assert reply.status == 200
            page = reply.json()
            assert page["output"] == "\ufffd" * (page["next_offset"] - offset)
            sizes.append(len(reply.body))

        def watch() -> None:
            while not done.is_set():
                peak.append(api.memory_info().rss)
                done.wait(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        readers = [threading.Thread(target=read, args=(n * 4 * MiB,)) for n in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(60)
        done.set()
        watcher.join()
        assert len(sizes) == 8
        # Three bytes of UTF-8 per replaced byte, and nothing else to speak of.
        assert max(sizes) <= 3 * 4 * MiB + 1024
        assert max(peak) - before < 256 * MiB, (max(peak) - before) / MiB
        assert server.request("GET", f"/jobs/{job}/status").status == 200
    finally:
        stop_server(server.process)


def test_clients_that_do_not_read_their_pages_hold_little_memory(tmp_path: Path) -> None:
    """Forty clients ask for 8 MiB pages of 0xFF and read nothing: once that
    took the API from 48 MiB to 2 GB in seconds. Pages are sent a piece at a
    time, each waiting for the client to take the one before."""
    server = start_server(tmp_path, "--rate-limit-ms", "0")
    sockets: list[ssl.SSLSocket] = []
    try:
        api = psutil.Process(server.api_pid)
        job = server.run_job("sh", "-c", "head -c 16777216 /dev/zero | tr '\\0' '\\377'")
        assert server.wait_final(job, timeout=60)["status"] == "completed"
        before = api.memory_info().rss
        context = ssl.create_default_context(cafile=str(CA))
        token = base64.b64encode(b"alice:wonderland").decode()
        request = (
            f"GET /jobs/{job}/out?limit={8 * MiB} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Basic {token}\r\n\r\n"
        ).encode()
        for _ in range(40):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            tls = context.wrap_socket(raw, server_hostname="localhost")
            tls.sendall(request)
            sockets.append(tls)
        # The server writes what the sockets' buffers take, then waits; look
        # at its memory for a while as it does.
        peak = before
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            peak = max(peak, api.memory_info().rss)
            time.sleep(0.02)
        assert (peak - before) / MiB < 64, (peak - before) / MiB
        assert server.request("GET", f"/jobs/{job}/status").status == 200
    finally:
        for tls in sockets:
            tls.close()
        stop_server(server.process)


def test_the_job_list_comes_in_pages(fresh_server: Server) -> None:
    ids = [fresh_server.run_job("true") for _ in range(230)]
    for job in ids[-3:]:
        fresh_server.wait_final(job)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = f"?limit=100&cursor={cursor}" if cursor else ""
        reply = fresh_server.request("GET", f"/jobs{query}").json()
        seen += [job["id"] for job in reply["jobs"]]
        cursor = reply["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert pages == 3
    default = fresh_server.request("GET", "/jobs").json()
    assert len(default["jobs"]) == 100 and default["next_cursor"] is not None
    assert fresh_server.request("GET", "/jobs", user="bob").json() == {
        "jobs": [],
        "next_cursor": None,
    }
    listed = fresh_server.cli("list", "--limit", "150")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.decode().splitlines()) == 151  # a header and 150 jobs
    assert b"--all" in listed.stderr
    everything = fresh_server.cli("list", "--all")
    assert len(everything.stdout.decode().splitlines()) == 231


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=x", "cursor=abc", "cursor=-1"],
)
def test_bad_paging_is_a_400(server: Server, query: str) -> None:
    reply = server.request("GET", f"/jobs?{query}")
    assert reply.status == 400
    assert set(reply.json()) == {"error"}


@pytest.mark.parametrize("query", ["limit=0", f"limit={8 * MiB + 1}", "offset=-1"])
def test_bad_output_paging_is_a_400(server: Server, query: str) -> None:
    job = server.run_job("true")
    reply = server.request("GET", f"/jobs/{job}/out?{query}")
    assert reply.status == 400
    assert set(reply.json()) == {"error"}
