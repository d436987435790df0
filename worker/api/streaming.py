"""The one place that touches Sanic's streaming internals (pinned in
pyproject.toml; tests/api/test_sanic_internals.py fails loudly if they
move): the connection's transport, whether Sanic frames the response in
chunks, ending that framing with trailers, a response timeout per
connection, and interim replies. Everything else uses Sanic's public API.

Two HTTP/1.1 features Sanic lacks live here:
- A client that sends ``Prefer: progress`` may get a ``102 Processing``
  interim reply (headers only) before the real one, e.g. a kill that waits
  out its grace period says so at once. Clients that do not ask never get
  one (``http.client`` would take it for the reply).
- A client that sends ``TE: trailers`` may get trailer fields after a
  chunked body, e.g. a followed job's final status once its output ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sanic import Request
from sanic.http.constants import Stage

from worker import chunked


def transport(request: Request[Any, Any]) -> Any:
    """The connection's asyncio transport (loosely typed by Sanic)."""
    return request.transport


def _tokens(request: Request[Any, Any], name: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in request.headers.get(name, "").split(",")}


def wants_progress(request: Request[Any, Any]) -> bool:
    return request.version == "1.1" and "progress" in _tokens(request, "prefer")


def wants_trailers(request: Request[Any, Any]) -> bool:
    return "trailers" in _tokens(request, "te")


def send_progress(request: Request[Any, Any], headers: dict[str, str]) -> None:
    """A ``102 Processing`` interim reply, before anything else is sent."""
    sock = transport(request)
    if not sock.is_closing():
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.write(b"HTTP/1.1 102 Processing\r\n" + fields.encode("latin-1") + b"\r\n")


def is_chunked(request: Request[Any, Any]) -> bool:
    """Whether Sanic is sending this response in HTTP/1.1 chunked framing
    (so our own chunk frames may go to the socket beside its own)."""
    func = getattr(request.stream, "response_func", None)
    return getattr(func, "__name__", "") == "http1_response_chunked"


async def end(request: Request[Any, Any], response: Any, trailers: dict[str, str] | None) -> None:
    """End a streamed response, with ``trailers`` if there are any and the
    framing allows them (announced in its ``Trailer`` header)."""
    stream: Any = request.stream
    sock = transport(request)
    if not trailers or not is_chunked(request) or sock.is_closing():
        await response.eof()
        return
    # What Sanic's chunked writer does at its end, with the fields between
    # the last chunk and the empty line.
    sock.write(chunked.end(trailers))
    stream.response_func = None
    stream.stage = Stage.IDLE


@contextlib.contextmanager
def response_timeout(request: Request[Any, Any], seconds: float) -> Iterator[None]:
    """Sanic ends a response that sends nothing for RESPONSE_TIMEOUT; a follow
    of a quiet job (or a wait for its end) may legitimately do that for hours."""
    protocol: Any = request.stream.protocol if request.stream is not None else None
    saved = protocol.response_timeout
    protocol.response_timeout = seconds
    try:
        yield
    finally:
        protocol.response_timeout = saved
