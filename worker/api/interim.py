"""Two HTTP/1.1 features Sanic lacks: interim replies and trailers.

- A client that sends ``Prefer: progress`` may get a ``102 Processing``
  interim reply (headers only) before the real one, e.g. a kill that waits
  out its grace period says so at once. Clients that do not ask never get
  one (``http.client`` would take it for the reply).
- A client that sends ``TE: trailers`` may get trailer fields after a
  chunked body, e.g. a followed job's final status once its output ends.

Both are written to the connection's transport, as follow.py writes chunk
frames; the trailers end Sanic's chunked response in its stead.
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.http.constants import Stage


def _tokens(request: Request[Any, Any], name: str) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in request.headers.get(name, "").split(",")}


def wants_progress(request: Request[Any, Any]) -> bool:
    return request.version == "1.1" and "progress" in _tokens(request, "prefer")


def wants_trailers(request: Request[Any, Any]) -> bool:
    return "trailers" in _tokens(request, "te")


def _fields(headers: dict[str, str]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1")


def send_progress(request: Request[Any, Any], headers: dict[str, str]) -> None:
    """A ``102 Processing`` interim reply, before anything else is sent."""
    transport: Any = request.transport
    if not transport.is_closing():
        transport.write(b"HTTP/1.1 102 Processing\r\n" + _fields(headers) + b"\r\n")


def chunked(request: Request[Any, Any]) -> bool:
    """Whether Sanic is sending this response in HTTP/1.1 chunked framing."""
    func = getattr(request.stream, "response_func", None)
    return getattr(func, "__name__", "") == "http1_response_chunked"


async def end(request: Request[Any, Any], response: Any, trailers: dict[str, str] | None) -> None:
    """End a streamed response, with ``trailers`` if there are any and the
    framing allows them (announced in its ``Trailer`` header)."""
    stream: Any = request.stream
    transport: Any = request.transport
    if not trailers or not chunked(request) or transport.is_closing():
        await response.eof()
        return
    # What Sanic's chunked writer does at the end, with the fields between
    # the last chunk and the empty line.
    transport.write(b"0\r\n" + _fields(trailers) + b"\r\n")
    stream.response_func = None
    stream.stage = Stage.IDLE
