"""The API's requests, one method each, with the server's JSON documents as
replies, exactly as sent.

``Client`` turns these into typed results; the CLI prints them as they are
(``--json`` shows the server's own document), and so never pays for building
the result classes. Every method is one request, however many retries a
429 or a retryable 503 costs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence

from worker.client.http11 import Headers, Interim
from worker.client.transport import ApiClient, Response, Streamed, Trace
from worker.errors import ApiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from worker.client.config import ClientConfig
    from worker.client.results import Limits

# A job as a path names it: its ID, or a name (the caller's newest job of it).
JobRef = int | str
Document = dict[str, "Any"]
# The most jobs one list request may ask for (the server's own maximum).
MAX_PAGE = 1000
# What urllib.parse.quote leaves as it is.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def job_of(headers: Headers) -> Document | None:
    """The job's status that a reply (or its trailers) carries, if any."""
    text = headers.value("x-job")
    try:
        job = json.loads(text) if text else None
    except ValueError:
        return None
    return job if isinstance(job, dict) else None


class Api:
    def __init__(self, transport: ApiClient) -> None:
        self.transport = transport

    @classmethod
    def from_config(cls, config: ClientConfig, trace: Trace | None = None) -> Api:
        return cls(ApiClient(config, trace))

    def run(self, body: Document, idempotency_key: str) -> Document:
        """``{"id"}``. The key is sent again on every retry, so the server
        starts the job once however often the request has to be repeated."""
        key = {"Idempotency-Key": idempotency_key}
        return _json(
            self.transport.request("POST", "/jobs/run", body, headers=key, retry_unavailable=True)
        )

    def run_follow(self, body: Document, idempotency_key: str) -> Stream:
        """Start the job and stream its output in the same request."""
        key = {"Idempotency-Key": idempotency_key}
        streamed = self.transport.stream(
            "POST", "/jobs/run?follow=true", body, headers=key, retry_unavailable=True
        )
        return Stream(self, streamed)

    def status(self, job: JobRef, *, wait: bool = False) -> Document:
        """``wait``: answered once the job has ended, however long that takes."""
        path = f"/jobs/{_ref(job)}/status"
        if wait:
            return _json(self.transport.request("GET", f"{path}?wait=true", patient=True))
        return _json(self.transport.request("GET", path))

    def out_page(
        self,
        job: JobRef,
        *,
        offset: int | None = None,
        tail: int | None = None,
        limit: int | None = None,
    ) -> Document:
        """One page of the output as text: ``{"id", "offset", "output",
        "next_offset", "size", "truncated_bytes", "evicted", "complete"}``."""
        query = _query(tail=tail, offset=offset, limit=limit)
        return _json(self.transport.request("GET", f"/jobs/{_ref(job)}/out{query}"))

    def out_raw(self, job: JobRef, *, tail: int | None = None) -> Response:
        """The output's bytes as they stand, with the job's status in the
        ``X-Job`` header and ``X-Output-Truncated-Bytes``."""
        query = _query(format="raw", tail=tail)
        return self.transport.request("GET", f"/jobs/{_ref(job)}/out{query}")

    def follow(self, job: JobRef, *, tail: int | None = None, offset: int | None = None) -> Stream:
        """The output live, until the job has ended (one request)."""
        query = _query(follow="true", tail=tail, offset=offset)
        return Stream(self, self.transport.stream("GET", f"/jobs/{_ref(job)}/out{query}"))

    def kill(
        self,
        job: JobRef,
        *,
        signal: str | int | None = None,
        force: bool = False,
        on_interim: Interim | None = None,
    ) -> Document:
        """``{"id", "status"}`` once every process is gone (``"sent"`` too,
        for one ``signal``). ``on_interim``: asks for, and is told, the 102
        reply a kill sends when the job outlives its SIGTERM."""
        query = _query(signal=signal, force="true" if force else None)
        headers = {}
        if on_interim is not None and signal is None and not force:
            headers["Prefer"] = "progress"
        path = f"/jobs/{_ref(job)}/kill{query}"
        reply = self.transport.request(
            "PUT", path, headers=headers, on_interim=on_interim, patient=True
        )
        return _json(reply)

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Document:
        """``{"jobs": [...], "next_cursor"}``: newest first."""
        query = _query(status=status, limit=limit, cursor=cursor)
        return _json(self.transport.request("GET", f"/jobs{query}"))

    def send(self, job: JobRef, data: bytes, *, eof: bool = False) -> Document:
        """``{"id", "accepted", "closed"}``."""
        query = _query(eof="true" if eof else None)
        return _json(self.transport.request("POST", f"/jobs/{_ref(job)}/stdin{query}", raw=data))

    def remove(self, job: JobRef) -> Document:
        """``{"deleted": [id]}``; refused (409) while the job runs."""
        return _json(self.transport.request("DELETE", f"/jobs/{_ref(job)}"))

    def prune(self) -> Document:
        """``{"deleted": [ids]}``: every finished job of the caller."""
        return _json(self.transport.request("DELETE", "/jobs?finished=true"))

    def health(self) -> Document:
        return _json(self.transport.request("GET", "/health"))

    def close(self) -> None:
        self.transport.close()


class Stream:
    """A followed job's output as it comes: its status now (``job``, from
    the ``X-Job`` header), its bytes, and once they end, its final status."""

    def __init__(self, api: Api, streamed: Streamed) -> None:
        self._api = api
        self._streamed = streamed
        self.status = streamed.status  # 201 for a run, 200 if it was replayed
        self.headers = streamed.headers
        self.job = job_of(streamed.headers)
        given = streamed.headers.value("x-job-id")
        self.job_id: int | None = (
            int(given) if given.isdigit() else (int(self.job["id"]) if self.job else None)
        )

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._streamed)

    def final(self) -> Document:
        """The job's status once its output has ended: the reply's trailer,
        or (a server that could not send one) one status request more."""
        final = job_of(self._streamed.trailers)
        if final is None:
            assert self.job_id is not None, "a follow reply names its job"
            final = self._api.status(self.job_id)
        return final

    def close(self) -> None:
        if not self._streamed.done:
            self._api.transport.close()


def _ref(job: JobRef) -> str:
    return _quote(str(job))


def _query(**params: str | int | None) -> str:
    """``?a=1&b=2`` of the parameters given (not None), in order."""
    given = [f"{name}={_quote(str(value))}" for name, value in params.items() if value is not None]
    return "?" + "&".join(given) if given else ""


def _quote(text: str) -> str:
    """``urllib.parse.quote(text, safe="")``; IDs, names and flags have
    nothing to escape, and urllib.parse (with ipaddress) costs a short
    command its import."""
    if _UNRESERVED.issuperset(text):
        return text
    from urllib.parse import quote

    return quote(text, safe="")


def _json(response: Response) -> Document:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ApiError("the server's reply is not a JSON object", response.status)
    return document


def new_key() -> str:
    return os.urandom(16).hex()


def run_body(
    command: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float | None,
    name: str | None,
    network: str | None,
    limits: Limits | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A run request's body, with only what was given."""
    body: dict[str, Any] = {"command": command, "args": list(args)}
    if timeout is not None:
        body["timeout"] = timeout
    if env:
        body["env"] = dict(env)
    if cwd is not None:
        body["cwd"] = cwd
    if network is not None:
        body["network"] = network
    if name is not None:
        body["name"] = name
    if limits:
        given = limits if isinstance(limits, Mapping) else limits.to_json()
        if given:
            body["limits"] = dict(given)
    return body
