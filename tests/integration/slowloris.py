"""A slowloris: thousands of loopback sockets that each take as long as they can.

Run as a process of its own (``python -m tests.integration.slowloris SPEC``),
so the sockets count against its open-files limit, not the test's. SPEC is
JSON: ``{"port", "ca", "interval", "hold", "kinds": {"tcp": N, "header": N,
"body": N}, "sources": ["127.0.0.2", ...], "result": PATH}``; the sockets
take the source addresses in turn. Kinds:

- ``tcp``: connects and never starts TLS;
- ``header``: completes TLS, then sends a request head one byte every
  ``interval`` seconds;
- ``body``: completes TLS, sends a whole head announcing a large body, then
  sends the body one byte every ``interval`` seconds.

It prints one JSON line once every socket has connected (or failed to),
``{"ready": {...}}``, then waits until the server has closed every socket or
``hold`` seconds have passed, closes whatever is left, writes the result to
the file ``spec["result"]`` (per kind, how long each socket lasted before the
server closed it) and prints ``{"done": path}``.
Nothing here is reconnected: a closed socket stays closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

HEAD = b"GET /jobs HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000
BODY_HEAD = b"POST /jobs/1/stdin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"
CONNECTS_AT_ONCE = 256
CONNECT_TIMEOUT = 20.0


@dataclass
class Tally:
    opened: int = 0
    failed: int = 0
    lifetimes: list[float] = field(default_factory=list)  # opened -> closed by the server
    answers: dict[str, int] = field(default_factory=dict)  # status line -> count
    left_open: int = 0


class Attack:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.tallies = {kind: Tally() for kind in spec["kinds"]}
        self.gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
        context = ssl.create_default_context(cafile=spec["ca"])
        context.check_hostname = False  # the attacker does not care whom it floods
        self.tls = context

    async def run(self) -> dict[str, Any]:
        sources = self.spec["sources"]
        openers = []
        index = 0
        for kind, count in self.spec["kinds"].items():
            for _ in range(count):
                source = sources[index % len(sources)]
                index += 1
                openers.append(self.open(kind, source))
        watchers = await asyncio.gather(*openers)
        ready = {k: {"opened": t.opened, "failed": t.failed} for k, t in self.tallies.items()}
        print(json.dumps({"ready": ready}), flush=True)
        live = [w for w in watchers if w is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*live), self.spec["hold"])
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        return {kind: vars(tally) for kind, tally in self.tallies.items()}

    async def open(self, kind: str, source: str) -> asyncio.Task[None] | None:
        tally = self.tallies[kind]
        async with self.gate:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    if kind == "tcp":
                        watcher = await self.open_tcp(source, tally)
                    else:
                        watcher = await self.open_tls(kind, source, tally)
            except (OSError, TimeoutError, ssl.SSLError):
                tally.failed += 1
                return None
        tally.opened += 1
        return asyncio.create_task(watcher)

    async def open_tcp(self, source: str, tally: Tally) -> Any:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            await loop.sock_connect(sock, ("127.0.0.1", self.spec["port"]))
        except BaseException:
            sock.close()
            raise
        return self.watch_tcp(sock, time.monotonic(), tally)

    async def watch_tcp(self, sock: socket.socket, opened: float, tally: Tally) -> None:
        loop = asyncio.get_running_loop()
        try:
            while await loop.sock_recv(sock, 4096):
                pass
            tally.lifetimes.append(time.monotonic() - opened)
        except OSError:
            tally.lifetimes.append(time.monotonic() - opened)
        except asyncio.CancelledError:
            tally.left_open += 1
        finally:
            sock.close()

    async def open_tls(self, kind: str, source: str, tally: Tally) -> Any:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            self.spec["port"],
            ssl=self.tls,
            local_addr=(source, 0),
            ssl_handshake_timeout=CONNECT_TIMEOUT,
        )
        opened = time.monotonic()
        writer.write(BODY_HEAD if kind == "body" else HEAD[:20])
        return self.watch_tls(kind, reader, writer, opened, tally)

    async def watch_tls(
        self,
        kind: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        opened: float,
        tally: Tally,
    ) -> None:
        trickle = asyncio.create_task(self.trickle(kind, writer))
        answer = b""
        try:
            while chunk := await reader.read(4096):
                answer += chunk
            tally.lifetimes.append(time.monotonic() - opened)
        except (OSError, ssl.SSLError):
            tally.lifetimes.append(time.monotonic() - opened)
        except asyncio.CancelledError:
            tally.left_open += 1
        finally:
            trickle.cancel()
            status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(nothing)"
            tally.answers[status] = tally.answers.get(status, 0) + 1
            writer.transport.abort()

    async def trickle(self, kind: str, writer: asyncio.StreamWriter) -> None:
        position = 20
        with contextlib.suppress(OSError, RuntimeError):
            while not writer.is_closing():
                await asyncio.sleep(self.spec["interval"])
                if kind == "body":
                    writer.write(b"x")
                else:
                    writer.write(HEAD[position : position + 1])
                    position += 1


def main() -> None:
    spec = json.loads(sys.argv[1])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(Attack(spec).run())
    with open(spec["result"], "w") as out:
        json.dump(result, out)
    print(json.dumps({"done": spec["result"]}), flush=True)


if __name__ == "__main__":
    main()
