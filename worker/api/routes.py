"""The job endpoints. Each checks its input, asks the executor, shapes JSON."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from worker.api import follow, jobjson, parse, streaming
from worker.api.executor_client import ExecutorClient, deadline_for
from worker.api.follow import Feeds
from worker.api.gate import Gate, Handler, check_local, reply_headers
from worker.api.jobjson import status_body
from worker.api.jobrefs import JobLookup
from worker.api.output import OutputReader, job_header
from worker.config import DEFAULT_KILL_GRACE
from worker.errors import BadRequest
from worker.protocol import (
    DeleteJobs,
    JobCreated,
    JobInfo,
    JobList,
    JobsDeleted,
    JobSnapshot,
    KillJob,
    ListJobs,
    Ping,
    Pong,
    RunJob,
    StdinWritten,
    WriteStdin,
)

# A kill not answered within this long has a job that outlived its SIGTERM.
PROGRESS_AFTER = 0.25


class JobRoutes:
    def __init__(
        self,
        executor: ExecutorClient,
        feeds: Feeds,
        kill_timeout: float,
        kill_grace: float = DEFAULT_KILL_GRACE,
    ) -> None:
        """``kill_timeout``: how long a kill may take (the grace period, then
        SIGKILL settling) before the API stops waiting for it."""
        self._executor = executor
        self._feeds = feeds
        self._kill_timeout = kill_timeout
        self._kill_grace = kill_grace
        self._jobs = JobLookup(executor)

    def register(self, app: Sanic[Any, Any], gate: Gate) -> None:
        routes: list[tuple[Handler, str, str]] = [
            (self.run, "/jobs/run", "POST"),
            (self.list, "/jobs", "GET"),
            (self.status, "/jobs/<raw_id>/status", "GET"),
            (self.out, "/jobs/<raw_id>/out", "GET"),
            (self.kill, "/jobs/<raw_id>/kill", "PUT"),
            (self.stdin, "/jobs/<raw_id>/stdin", "POST"),
            (self.delete, "/jobs/<raw_id>", "DELETE"),
            (self.prune, "/jobs", "DELETE"),
        ]
        for handler, path, method in routes:
            app.add_route(gate.guard(handler), path, methods=[method], name=handler.__name__)
        # No credentials: a container's health check has none. It says only
        # whether the executor answers.
        app.add_route(self.health, "/health", methods=["GET"], name="health")

    async def health(self, request: Request) -> HTTPResponse:
        check_local(request)
        await self._executor.call(Ping, Pong)
        return json({"status": "ok"})

    async def run(self, request: Request) -> HTTPResponse | None:
        """``?follow=true``: the reply is the job's output, live, as for
        ``out?follow=true``, with its ID in ``X-Job-Id``."""
        options = parse.run_body(request.body)
        key = parse.idempotency_key(request.headers.get("idempotency-key"))
        follow = parse.flag(request.args.get("follow"), "follow")
        user = request.ctx.user
        deadline = deadline_for(self._executor.timeout)
        reply = await self._executor.call(
            lambda rid: RunJob(
                rid,
                user,
                options.command,
                options.args,
                timeout=options.timeout,
                env=options.env,
                cwd=options.cwd,
                deadline=deadline,
                idempotency_key=key,
                network=options.network,
                limits=options.limits,
                name=options.name,
            ),
            JobCreated,
            unanswered="the job was not started",
        )
        replayed = {"Idempotent-Replayed": "true"} if reply.existing else {}
        status = 200 if reply.existing else 201
        if follow:
            created = {"X-Job-Id": str(reply.job_id), **replayed}
            await self._follow(request, reply.job_id, 0, status, created)
            return None
        return json({"id": reply.job_id}, status=status, headers=replayed)

    async def list(self, request: Request) -> HTTPResponse:
        wanted = parse.status_filter(request.args.get("status"))
        most = parse.limit(
            request.args.get("limit"), parse.DEFAULT_LIST_LIMIT, parse.MAX_LIST_LIMIT
        )
        before = parse.cursor(request.args.get("cursor"))
        user = request.ctx.user
        reply = await self._executor.call(
            lambda rid: ListJobs(rid, user, wanted, most, before), JobList
        )
        following = None if reply.next_before is None else str(reply.next_before)
        settled = self._executor.settled
        return jobjson.response(jobjson.list_json(map(settled.json, reply.jobs), following))

    async def status(self, request: Request, raw_id: str) -> HTTPResponse:
        """``?wait=true``: answered once the job has ended."""
        user = request.ctx.user
        job = await self._jobs.snapshot(user, raw_id)
        if parse.flag(request.args.get("wait"), "wait") and not job.status.is_final:
            with streaming.response_timeout(request, follow.FOLLOW_TIMEOUT):
                job = await self._jobs.final(user, job.id)
        return jobjson.response(self._executor.settled.json(job))

    async def out(self, request: Request, raw_id: str) -> HTTPResponse | None:
        user = request.ctx.user
        job = await self._jobs.snapshot(user, raw_id)
        reader = OutputReader(self._executor, user, job.id)
        follow = parse.flag(request.args.get("follow"), "follow")
        form = request.args.get("format", "raw" if follow else "json")
        if form not in ("json", "raw") or (follow and form != "raw"):
            raise BadRequest("'format' must be json or raw (raw only, when following)")
        lines = parse.tail(request.args.get("tail"))
        if lines is not None and "offset" in request.args:
            raise BadRequest("'tail' and 'offset' do not go together")
        offset = parse.offset(request.args.get("offset"))
        if lines is not None:
            offset = await reader.tail_offset(lines)
        if follow:
            await self._follow(request, job, offset)
        elif form == "raw":
            header = {"X-Job": job_header(status_body(job))}
            await reader.send_raw(request, offset, {**reply_headers(request), **header})
        else:
            most = parse.limit(
                request.args.get("limit"), parse.DEFAULT_OUTPUT_LIMIT, parse.MAX_OUTPUT_LIMIT
            )
            await reader.json_page(request, offset, most, reply_headers(request))
        return None

    async def _follow(
        self,
        request: Request,
        job: JobSnapshot | int,
        offset: int,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The job's output live, with its status in ``X-Job`` now and, for a
        client that takes trailers, its final status in an ``X-Job`` trailer."""
        user = request.ctx.user
        if isinstance(job, int):
            job = await self._jobs.snapshot(user, job)
        job_id = job.id
        sent = {**reply_headers(request), **(headers or {}), "X-Job": job_header(status_body(job))}

        async def final() -> dict[str, str]:
            return {"X-Job": job_header(status_body(await self._jobs.snapshot(user, job_id)))}

        reader = OutputReader(self._executor, user, job_id)
        await follow.send_live(
            reader, request, self._feeds, offset, status=status, headers=sent, trailers=final
        )

    async def kill(self, request: Request, raw_id: str) -> HTTPResponse:
        """TERM, grace, KILL; ``?force=true``: KILL at once; ``?signal=HUP``:
        that signal only, answered at once with the job's status and ``sent``."""
        user = request.ctx.user
        job_id = await self._jobs.job_id(user, raw_id)
        named = request.args.get("signal")
        force = parse.flag(request.args.get("force"), "force")
        if named is not None and force:
            raise BadRequest("'signal' and 'force' do not go together")
        sig = None if named is None else parse.signal_number(named)
        deadline = deadline_for(self._kill_timeout)
        killing = asyncio.ensure_future(
            self._executor.call(
                lambda rid: KillJob(rid, user, job_id, deadline, sig, force),
                JobInfo,
                timeout=self._kill_timeout,
                unanswered="the kill was not sent",
            )
        )
        try:
            if sig is None and not force and streaming.wants_progress(request):
                await self._tell_progress(request, killing)
            reply = await killing
        finally:
            killing.cancel()  # if the client went away meanwhile
        body: dict[str, Any] = {"id": reply.job.id, "status": reply.job.status.value}
        if sig is not None:
            body["sent"] = signal.Signals(sig).name
        return json(body)

    async def _tell_progress(self, request: Request, killing: asyncio.Future[JobInfo]) -> None:
        """A kill that takes a while (the job did not end on SIGTERM) says so
        at once, in a 102 interim reply, with the seconds left until SIGKILL."""
        began = time.monotonic()
        done, _ = await asyncio.wait({killing}, timeout=PROGRESS_AFTER)
        if not done:
            left = max(0.0, self._kill_grace - (time.monotonic() - began))
            told = {"X-Kill-Signal": "SIGTERM", "X-Kill-After": f"{left:.1f}"}
            streaming.send_progress(request, told)

    async def stdin(self, request: Request, raw_id: str) -> HTTPResponse:
        user = request.ctx.user
        job_id = await self._jobs.job_id(user, raw_id)
        close = parse.flag(request.args.get("eof"), "eof")
        data = request.body or b""
        deadline = deadline_for(self._executor.timeout)
        reply = await self._executor.call(
            lambda rid: WriteStdin(rid, user, job_id, data, close, deadline),
            StdinWritten,
            unanswered="nothing was written",
        )
        return json({"id": reply.job_id, "accepted": reply.accepted, "closed": reply.closed})

    async def delete(self, request: Request, raw_id: str) -> HTTPResponse:
        """Forget a finished job and its output (409 while it runs)."""
        user = request.ctx.user
        job_id = await self._jobs.job_id(user, raw_id)
        await self._executor.call(lambda rid: DeleteJobs(rid, user, (job_id,)), JobsDeleted)
        return json({"deleted": [job_id]})

    async def prune(self, request: Request) -> HTTPResponse:
        """Forget every finished job of the caller."""
        if request.args.get("finished") not in ("true", "1", "yes"):
            raise BadRequest("DELETE /jobs needs ?finished=true (running jobs are never deleted)")
        user = request.ctx.user
        reply = await self._executor.call(lambda rid: DeleteJobs(rid, user, None), JobsDeleted)
        return json({"deleted": list(reply.deleted)})
