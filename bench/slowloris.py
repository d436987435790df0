"""`python -m bench.slowloris`: the issue-10 figure, at its full size.

A slowloris of 20,000 loopback sockets (two attacker processes, each within
its own 20,000 open-files limit: bare TCP that never starts TLS, TLS then a
request head a byte every 2 s, TLS then a body a byte every 2 s) against a
`worker serve` with its default caps and deadlines, while two clients make
one legitimate request after another, each on a new connection as the CLI
does. Prints one JSON object: how long the attack's sockets lasted, the
legitimate requests' latencies, the API's most open descriptors, and its RSS
at start, at the peak, right after the attack and a minute later.

The suite runs a smaller attack (tests/integration/test_slow_clients.py);
this is the figure the issue names. It takes about two minutes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import CA, PASSWORD, ROOT, USER
from bench.httpload import percentile
from bench.procs import start_worker

AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PER_PROCESS = {"tcp": 8000, "header": 1000, "body": 1000}
AFTER = 60.0


class Legitimate(threading.Thread):
    def __init__(self, port: int, job: int) -> None:
        super().__init__(daemon=True)
        self.port, self.job = port, job
        self.samples: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        context = ssl.create_default_context(cafile=str(CA))
        while not self.stop.is_set():
            started = time.monotonic()
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=60)
            try:
                conn.request("GET", f"/jobs/{self.job}/status", headers={"Authorization": AUTH})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(str(response.status))
            except OSError as exc:
                self.failures.append(repr(exc))
            finally:
                conn.close()
            self.samples.append((started, time.monotonic() - started))
            self.stop.wait(0.05)


def attack(port: int, processes: int, workdir: Path) -> list[subprocess.Popen[bytes]]:
    attackers = []
    for index in range(processes):
        spec = {
            "port": port,
            "ca": str(CA),
            "interval": 2.0,
            "hold": 60.0,
            "kinds": PER_PROCESS,
            "sources": [f"127.0.{index + 1}.{host}" for host in range(1, 5)],
            "result": str(workdir / f"attacker-{index}.json"),
        }
        attackers.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.integration.slowloris", json.dumps(spec)],
                stdout=subprocess.PIPE,
                cwd=ROOT,
                start_new_session=True,
            )
        )
    return attackers


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.5),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slowloris", description=__doc__)
    parser.add_argument("--processes", type=int, default=2, help="attackers, 10,000 sockets each")
    args = parser.parse_args()
    server = start_worker("--rate-limit-ms", "0")
    api = psutil.Process(server.api_pid)
    attackers: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-slowloris-"))
    legit: list[Legitimate] = []
    try:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=ssl.create_default_context(cafile=str(CA))
        )
        conn.request(
            "POST", "/jobs/run", body=b'{"command": "true"}', headers={"Authorization": AUTH}
        )
        job = json.loads(conn.getresponse().read())["id"]
        conn.close()
        legit = [Legitimate(server.port, job) for _ in range(2)]
        for client in legit:
            client.start()
        time.sleep(2)
        rss_start = api.memory_info().rss
        most_fds, peak_rss = 0, rss_start
        began = time.monotonic()
        attackers = attack(server.port, args.processes, workdir)
        while any(a.poll() is None for a in attackers):
            most_fds = max(most_fds, api.num_fds())
            peak_rss = max(peak_rss, api.memory_info().rss)
            time.sleep(0.2)
        ended = time.monotonic()
        for client in legit:
            client.stop.set()
            client.join(60)
        rss_right_after = api.memory_info().rss
        within = None
        while time.monotonic() - ended < AFTER:
            if within is None and api.memory_info().rss - rss_start <= 50 << 20:
                within = time.monotonic() - ended
            time.sleep(0.5)
        rss_after = api.memory_info().rss
        lifetimes: dict[str, list[float]] = {}
        left_open: dict[str, int] = {}
        for index in range(args.processes):
            result = json.loads((workdir / f"attacker-{index}.json").read_text())
            for kind, tally in result.items():
                lifetimes.setdefault(kind, []).extend(tally["lifetimes"])
                left_open[kind] = left_open.get(kind, 0) + tally["left_open"]
        during = [seconds for c in legit for start, seconds in c.samples if began <= start <= ended]
        report: dict[str, Any] = {
            "attack sockets": args.processes * sum(PER_PROCESS.values()),
            "attack seconds": round(ended - began, 1),
            "socket lifetimes, s (closed by the server)": {
                kind: summary(values) for kind, values in lifetimes.items()
            },
            "sockets the server never took from its accept queue": left_open,
            "legitimate requests during the attack, s": summary(during),
            "legitimate failures": sum(len(c.failures) for c in legit),
            "API most open descriptors": most_fds,
            "API RSS MiB": {
                "start": rss_start >> 20,
                "peak": peak_rss >> 20,
                "right after": rss_right_after >> 20,
                f"{AFTER:g} s after": rss_after >> 20,
            },
            "seconds until RSS within 50 MiB of start": within,
        }
        print(json.dumps(report, indent=2))
        return 0
    finally:
        for client in legit:
            client.stop.set()
        for attacker in attackers:
            if attacker.poll() is None:
                os.killpg(attacker.pid, signal.SIGKILL)  # the group we made
            attacker.wait()
            if attacker.stdout is not None:
                attacker.stdout.close()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
