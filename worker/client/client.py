"""``Client``: the worker API in Python terms, with typed results.

One keep-alive HTTPS connection, trusting only the given CA; requests spaced
as the server's rate limit asks, a 429 with ``Retry-After`` waited out (a
quota's 429 is not: it takes the user to act). Errors are the CLI's own:
``ApiError`` with the server's message and status, ``ConnectionFailed``
when the server cannot be reached or trusted, ``UsageError`` for a bad URL
or CA file. ``client.api`` makes the same requests and returns the server's
JSON documents as they are (the CLI prints those).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from worker.client.api import MAX_PAGE, Api, JobRef, Stream, job_of, new_key, run_body
from worker.client.config import DEFAULT_URL, ClientConfig
from worker.client.transport import Trace

if TYPE_CHECKING:
    from worker.client.results import Job, JobList, Killed, Limits, Output, RawOutput, Sent


class Client:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        user: str,
        password: str,
        ca: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        trace: Trace | None = None,
    ) -> None:
        """``ca``: the CA file that signed the server's certificate (None:
        the demo CA shipped with worker). ``timeout``: for connecting and
        for each reply, except those that take as long as the job (wait,
        follow, kill). ``trace(method, path, status)`` is told each reply."""
        if ca is None:
            from worker.resources import DEMO_CA, demo_path

            ca = demo_path(DEMO_CA)
        config = ClientConfig(
            url=url, ca_file=os.fspath(ca), user=user, password=password, timeout=timeout
        )
        self.config = config
        self.api = Api.from_config(config, trace)

    @classmethod
    def from_config(cls, config: ClientConfig, *, trace: Trace | None = None) -> Client:
        return cls(
            config.url,
            user=config.user,
            password=config.password,
            ca=config.ca_file,
            timeout=config.timeout,
            trace=trace,
        )

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        context: str | None = None,
        url: str | None = None,
        ca: str | None = None,
    ) -> Client:
        """As the CLI finds its server: ``context``, ``url`` and ``ca`` as
        its flags, then WORKER_URL, WORKER_CA, WORKER_USER, WORKER_PASSWORD
        and WORKER_CONTEXT, then the client config file's current context."""
        import argparse

        from worker.cli.main import client_config

        args = argparse.Namespace(context=context, url=url, ca=ca, json=False)
        return cls.from_config(client_config(args, os.environ if environ is None else environ))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the next request opens another)."""
        self.api.close()

    def run(
        self,
        command: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        name: str | None = None,
        network: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Start ``command args...`` (no shell); return the job's ID. A
        request the server could not answer is retried with the same
        ``idempotency_key`` (a fresh one by default): the job starts once."""
        body = run_body(
            command,
            args,
            env=env,
            cwd=cwd,
            timeout=timeout,
            name=name,
            network=network,
            limits=limits,
        )
        return int(self.api.run(body, idempotency_key or new_key())["id"])

    def run_and_follow(
        self,
        command: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        name: str | None = None,
        network: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Follow:
        """Start the job and follow its output, in one request."""
        body = run_body(
            command,
            args,
            env=env,
            cwd=cwd,
            timeout=timeout,
            name=name,
            network=network,
            limits=limits,
        )
        return Follow(self.api.run_follow(body, idempotency_key or new_key()))

    def status(self, job: JobRef) -> Job:
        """The job as it is now. ``job``: its ID, or a name (your newest
        job of that name)."""
        from worker.client.results import Job

        return Job.from_json(self.api.status(job))

    def wait(self, job: JobRef) -> Job:
        """The job once it has ended, however long that takes."""
        from worker.client.results import Job

        return Job.from_json(self.api.status(job, wait=True))

    def out(
        self,
        job: JobRef,
        *,
        offset: int = 0,
        tail: int | None = None,
        limit: int | None = None,
    ) -> Output:
        """One page of the output as text, from ``offset`` (or the last
        ``tail`` lines); ``limit`` bytes at most (the server's default: 1 MiB)."""
        from worker.client.results import Output

        start = None if tail is not None else offset
        return Output.from_json(self.api.out_page(job, offset=start, tail=tail, limit=limit))

    def pages(self, job: JobRef, *, tail: int | None = None) -> Iterator[Output]:
        """Every page of the output as it stands (a running job's is complete
        only once it has ended)."""
        page = self.out(job, tail=tail)
        yield page
        while not (
            page.complete or page.next_offset >= page.size or page.next_offset == page.offset
        ):
            page = self.out(job, offset=page.next_offset)
            yield page

    def output(self, job: JobRef, *, tail: int | None = None) -> RawOutput:
        """The output's bytes as they stand now (binary included)."""
        from worker.client.results import Job, RawOutput

        reply = self.api.out_raw(job, tail=tail)
        seen = job_of(reply.headers)
        dropped = reply.headers.value("x-output-truncated-bytes", "0")
        return RawOutput(
            reply.body,
            Job.from_json(seen) if seen else None,
            int(dropped) if dropped.isdigit() else 0,
        )

    def follow(self, job: JobRef, *, tail: int | None = None, offset: int | None = None) -> Follow:
        """The output live, as bytes as they come, until the job has ended
        and its output is closed (one request, however long)."""
        return Follow(self.api.follow(job, tail=tail, offset=offset))

    def kill(
        self,
        job: JobRef,
        *,
        signal: str | int | None = None,
        force: bool = False,
        on_progress: Callable[[float | None], None] | None = None,
    ) -> Killed:
        """SIGTERM to every process of the job, SIGKILL after the server's
        grace period; answered once all are gone. ``force``: SIGKILL at
        once. ``signal`` (a name or number): that signal, once, answered at
        once. ``on_progress(seconds_to_sigkill)``: told when the job outlives
        its SIGTERM. A job that has already ended: ``ApiError`` (409)."""
        from worker.client.results import Killed

        def progress(_status: int, told: Mapping[str, str]) -> None:
            assert on_progress is not None
            try:
                on_progress(float(told.get("x-kill-after", "")))
            except ValueError:
                on_progress(None)

        interim = progress if on_progress is not None else None
        return Killed.from_json(self.api.kill(job, signal=signal, force=force, on_interim=interim))

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JobList:
        """One page of your jobs, newest first (``status``: only those);
        pass its ``next_cursor`` as ``cursor`` for the next."""
        from worker.client.results import JobList

        return JobList.from_json(self.api.list(status=status, limit=limit, cursor=cursor))

    def jobs(self, *, status: str | None = None, page_size: int = MAX_PAGE) -> Iterator[Job]:
        """All your jobs, newest first, a page (one request) at a time."""
        cursor = None
        while True:
            page = self.list(status=status, limit=page_size, cursor=cursor)
            yield from page.jobs
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def send(self, job: JobRef, data: str | bytes = b"", *, eof: bool = False) -> Sent:
        """Write ``data`` (text as UTF-8; nothing added) to the job's stdin;
        ``eof``: then close it."""
        from worker.client.results import Sent

        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return Sent.from_json(self.api.send(job, raw, eof=eof))

    def remove(self, job: JobRef) -> int:
        """Forget an ended job and its output; return its ID. A running
        job: ``ApiError`` (409)."""
        return int(self.api.remove(job)["deleted"][0])

    def prune(self) -> tuple[int, ...]:
        """Forget every ended job of yours; return their IDs."""
        return tuple(int(job_id) for job_id in self.api.prune()["deleted"])

    def health(self) -> bool:
        """True if the server answers (an error is raised otherwise)."""
        return self.api.health().get("status") == "ok"


class Follow:
    """A followed job's output: iterate for its bytes as they come. ``job``
    is the job as the follow began; ``final()``, once the bytes have ended,
    the job as it ended. ``close()`` (or leaving a ``with`` block) lets go
    of a follow early."""

    def __init__(self, stream: Stream) -> None:
        from worker.client.results import Job

        self._stream = stream
        self.job: Job | None = Job.from_json(stream.job) if stream.job else None
        self.job_id: int | None = stream.job_id
        # A run whose request was repeated: the job its key first started.
        self.replayed = stream.headers.value("idempotent-replayed") == "true"

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def __enter__(self) -> Follow:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self) -> bytes:
        """All the bytes, until the output ends."""
        return b"".join(self._stream)

    def final(self) -> Job:
        from worker.client.results import Job

        return Job.from_json(self._stream.final())

    def close(self) -> None:
        """Stop following (the connection is closed if the output had not
        ended; the next request opens another)."""
        self._stream.close()
