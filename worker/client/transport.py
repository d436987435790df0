"""The worker API over HTTPS, trusting only the given CA: requests, replies,
retries and the rate limit's spacing. (``Client`` is the API in Python terms;
this is what carries it.)

It speaks HTTP/1.1 through ``http11``, not http.client, so that a short CLI
command does not pay for importing the email package; for the same reason
a plain https://HOST:PORT URL is split here, not by urllib.parse (with
ipaddress), which only an unusual URL loads.

The server's rate limit wants one user's requests spaced by an interval;
every reply says how long from now until the next may come
(``X-Rate-Limit-Wait-Ms``), and the client waits that long before its next
request rather than meet a 429. (A 429 can still come when other clients
of the same user are busy: it is waited out and retried.)
"""

from __future__ import annotations

import json
import sys
import time
from base64 import b64encode
from collections.abc import Callable, Iterator

from worker.client import tls
from worker.client.http11 import Headers, HttpConnection, Interim, Reply
from worker.errors import ApiError, ConnectionFailed, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from worker.client.config import ClientConfig

# How long, in all, one request waits out 429 replies before giving up.
MAX_RATE_LIMIT_WAIT = 10.0
WAIT_HEADER = "x-rate-limit-wait-ms"
# Told each request as it is answered: method, path, status.
Trace = Callable[[str, str, int], None]
# What a host or a path of a URL split here may hold (else urllib.parse splits it).
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_PATH_CHARS = _HOST_CHARS | frozenset("_~/")


def client_context(ca_file: str) -> tls.ClientContext:
    """Trust ``ca_file`` and nothing else; check the hostname."""
    try:
        return tls.ClientContext(ca_file)
    except (OSError, tls.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot load CA file {ca_file}: {reason}") from exc


class Response:
    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _Call:
    """One request, as often as it has to be sent."""

    __slots__ = ("body", "headers", "method", "on_interim", "path", "patient", "raw")

    def __init__(  # noqa: PLR0917 - one request's parts, as sent
        self,
        method: str,
        path: str,
        body: Any,
        raw: bytes | None,
        headers: dict[str, str],
        on_interim: Interim | None,
        patient: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.body = body  # sent as JSON, unless None
        self.raw = raw  # sent as is
        self.headers = headers
        self.on_interim = on_interim
        self.patient = patient  # no read timeout: the reply may take long (see http11)


class ApiClient:
    def __init__(self, config: ClientConfig, trace: Trace | None = None) -> None:
        self._config = config
        self._trace = trace
        self._next_at = 0.0  # time.monotonic() before which the server wants no request
        self._host, self._port, self._base = server_address(config.url)
        token = b64encode(f"{config.user}:{config.password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self._context = client_context(str(config.ca_file))
        self._conn: HttpConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        *,
        headers: dict[str, str] | None = None,
        retry_unavailable: bool = False,
        on_interim: Interim | None = None,
        patient: bool = False,
    ) -> Response:
        """Send one request (a JSON ``body``, or ``raw`` bytes); an error
        status raises ``ApiError``. A 429 (too soon after this user's previous
        request) is waited out and retried, a bounded number of times; so is
        a 503 that says "try again" (``Retry-After``) if ``retry_unavailable``
        (a request that is safe to repeat, such as a run with an
        Idempotency-Key: the same key is sent every time)."""
        call = _Call(method, path, body, raw, headers or {}, on_interim, patient)
        return self._read(self._open(call, retry_unavailable))

    def stream(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        retry_unavailable: bool = False,
    ) -> Streamed:
        """Send a request whose reply is read as it arrives (a follow); its
        trailers come with it. Errors and retries as ``request``."""
        call = _Call(method, path, body, None, {**(headers or {}), "TE": "trailers"}, None, True)
        return Streamed(self, self._open(call, retry_unavailable))

    def _open(self, call: _Call, retry_unavailable: bool) -> Reply:
        """The reply of a successful request, its body still to be read."""
        reply = self._send(call)
        waited = 0.0
        while reply.status >= 400:
            error = self._read(reply)
            if not _retryable(error, retry_unavailable) or waited >= MAX_RATE_LIMIT_WAIT:
                raise ApiError(_error_message(error), error.status)
            delay = _retry_delay(error)
            time.sleep(delay)
            waited += delay
            reply = self._send(call)
        return reply

    def _send(self, call: _Call) -> Reply:
        wait = self._next_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the spacing the server asked for
        headers = {"Authorization": self._auth, "Accept": "application/json", **call.headers}
        payload = call.raw
        if call.body is not None:
            payload = json.dumps(call.body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif call.raw is not None:
            headers["Content-Type"] = "application/octet-stream"
        method, path = call.method, call.path
        try:
            reply = self._connection().request(
                method,
                self._base + path,
                payload,
                headers,
                on_interim=call.on_interim,
                patient=call.patient,
            )
        except BaseException:
            self.failed()
            raise
        told = reply.headers.value(WAIT_HEADER)
        if told.isdigit():
            # From now (the reply is here, after the server counted): a
            # millisecond more, as it rounds to whole ones.
            self._next_at = time.monotonic() + (int(told) + 1) / 1000
        if self._trace is not None:
            self._trace(method, path, reply.status)
        return reply

    def _read(self, response: Reply) -> Response:
        try:
            return Response(response.status, response.headers, response.read())
        except BaseException:
            self.failed()
            raise

    def failed(self) -> None:
        """Called in an ``except`` block around I/O: network and TLS failures
        are raised as one-line ``ConnectionFailed`` errors; the caller
        re-raises anything else. (Not a context manager: contextlib would
        cost a short command its import.)"""
        self.close()  # whatever state the connection is in, start afresh
        raise_translated(self._config.url, str(self._config.ca_file))

    def _connection(self) -> HttpConnection:
        if self._conn is None:
            self._conn = HttpConnection(self._host, self._port, self._context, self._config.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Streamed:
    """A reply read as it arrives: its headers now, its body piece by piece,
    its trailers (e.g. a followed job's final status) once that has ended."""

    def __init__(self, client: ApiClient, reply: Reply) -> None:
        self._client = client
        self._reply = reply
        self.status = reply.status
        self.headers = reply.headers

    def __iter__(self) -> Iterator[bytes]:
        try:
            while data := self._reply.read1():
                yield data
        except BaseException:
            self._client.failed()
            raise

    @property
    def done(self) -> bool:
        """The whole body has been read."""
        return self._reply.done

    @property
    def trailers(self) -> Headers:
        return self._reply.trailers


def server_address(url: str) -> tuple[str, int, str]:
    """``(host, port, path)`` of the server's https URL, as urllib.parse's
    ``urlsplit`` gives them (a lower-case host, 443 unless told, the path
    without its trailing ``/``). A URL of plain names and digits is split
    here; anything else by urlsplit itself."""
    if url.startswith("https://"):
        netloc, slash, path = url[8:].partition("/")
        host, colon, port = netloc.partition(":")
        if (
            host
            and _HOST_CHARS.issuperset(host)
            and _PATH_CHARS.issuperset(path)
            and (not colon or (port.isascii() and port.isdigit() and 0 < int(port) < 65536))
        ):
            return host.lower(), int(port) if colon else 443, (slash + path).rstrip("/")
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UsageError(f"the server URL must look like https://HOST:PORT, not {url!r}")
    try:
        port_number = parts.port or 443
    except ValueError as exc:
        raise UsageError(f"bad port in server URL {url!r}") from exc
    return parts.hostname, port_number, parts.path.rstrip("/")


def raise_translated(url: str, ca_file: str) -> None:
    """Called in an ``except`` block: re-raise a network or TLS error as
    ``ConnectionFailed``; anything else is left to the caller to re-raise."""
    exc = sys.exc_info()[1]
    if isinstance(exc, tls.CertificateError):
        raise ConnectionFailed(
            f"refusing to talk to {url}: its certificate is not trusted "
            f"({exc.verify_message or exc.reason}; trusted CA: {ca_file})"
        ) from exc
    if isinstance(exc, tls.SSLError):
        raise ConnectionFailed(f"TLS handshake with {url} failed: {exc.reason or exc}") from exc
    if isinstance(exc, ConnectionRefusedError):
        raise ConnectionFailed(
            f"cannot connect to {url}: connection refused"
            " (is the server running? start it with `worker serve`)"
        ) from exc
    if isinstance(exc, TimeoutError):
        raise ConnectionFailed(f"no answer from {url} (timed out)") from exc
    if isinstance(exc, OSError):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ConnectionFailed(f"cannot talk to {url}: {reason}") from exc


def _retryable(reply: Response, unavailable: bool) -> bool:
    if reply.status == 429:
        # Too soon: says when to come back. A quota (no Retry-After) takes
        # the user to act: said at once, not waited out.
        return "retry-after" in reply.headers
    return unavailable and reply.status == 503 and "retry-after" in reply.headers


def _retry_delay(response: Response) -> float:
    try:
        milliseconds = float(response.json()["retry_after_ms"])
    except (ValueError, KeyError, TypeError):
        header = response.headers.value("Retry-After", "1")
        milliseconds = 1000 * float(header) if header.isdigit() else 1000.0
    # A little extra, so the retry does not land a hair too early.
    return min(max(milliseconds, 1.0), 5000.0) / 1000 + 0.005


def _error_message(response: Response) -> str:
    try:
        message = response.json()["error"]
        if isinstance(message, str) and message:
            return message
    except (ValueError, KeyError, TypeError):
        pass
    return f"the server answered HTTP {response.status}"
