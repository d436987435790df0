"""The job endpoints. Each checks its input, asks the executor, shapes JSON."""

from __future__ import annotations

from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from worker.api import parse
from worker.api.executor_client import ExecutorClient, deadline_for
from worker.api.follow import Feeds
from worker.api.gate import Gate, Handler, check_local
from worker.api.output import OutputReader
from worker.errors import BadRequest
from worker.protocol import (
    GetStatus,
    Isolation,
    JobCreated,
    JobInfo,
    JobList,
    JobSnapshot,
    KillJob,
    ListJobs,
    Ping,
    Pong,
    RunJob,
    StdinWritten,
    WriteStdin,
)


class JobRoutes:
    def __init__(self, executor: ExecutorClient, feeds: Feeds, kill_timeout: float) -> None:
        """``kill_timeout``: how long a kill may take (the grace period, then
        SIGKILL settling) before the API stops waiting for it."""
        self._executor = executor
        self._feeds = feeds
        self._kill_timeout = kill_timeout

    def register(self, app: Sanic[Any, Any], gate: Gate) -> None:
        routes: list[tuple[Handler, str, str]] = [
            (self.run, "/jobs/run", "POST"),
            (self.list, "/jobs", "GET"),
            (self.status, "/jobs/<raw_id>/status", "GET"),
            (self.out, "/jobs/<raw_id>/out", "GET"),
            (self.kill, "/jobs/<raw_id>/kill", "PUT"),
            (self.stdin, "/jobs/<raw_id>/stdin", "POST"),
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

    async def run(self, request: Request) -> HTTPResponse:
        options = parse.run_body(request.body)
        key = parse.idempotency_key(request.headers.get("idempotency-key"))
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
            ),
            JobCreated,
            unanswered="the job was not started",
        )
        if reply.existing:
            return json({"id": reply.job_id}, headers={"Idempotent-Replayed": "true"})
        return json({"id": reply.job_id}, status=201)

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
        return json({"jobs": [status_body(job) for job in reply.jobs], "next_cursor": following})

    async def status(self, request: Request, raw_id: str) -> HTTPResponse:
        job_id, user = parse.job_id(raw_id), request.ctx.user
        reply = await self._executor.call(lambda rid: GetStatus(rid, user, job_id), JobInfo)
        return json(status_body(reply.job))

    async def out(self, request: Request, raw_id: str) -> HTTPResponse | None:
        reader = OutputReader(self._executor, request.ctx.user, parse.job_id(raw_id))
        follow = parse.flag(request.args.get("follow"), "follow")
        offset = parse.offset(request.args.get("offset"))
        form = request.args.get("format", "raw" if follow else "json")
        if form not in ("json", "raw") or (follow and form != "raw"):
            raise BadRequest("'format' must be json or raw (raw only, when following)")
        if follow:
            await reader.send_live(request, self._feeds, offset)
            return None
        if form == "raw":
            await reader.send_raw(request, offset)
            return None
        most = parse.limit(
            request.args.get("limit"), parse.DEFAULT_OUTPUT_LIMIT, parse.MAX_OUTPUT_LIMIT
        )
        await reader.json_page(request, offset, most)
        return None

    async def kill(self, request: Request, raw_id: str) -> HTTPResponse:
        job_id, user = parse.job_id(raw_id), request.ctx.user
        deadline = deadline_for(self._kill_timeout)
        reply = await self._executor.call(
            lambda rid: KillJob(rid, user, job_id, deadline),
            JobInfo,
            timeout=self._kill_timeout,
            unanswered="the kill was not sent",
        )
        return json({"id": reply.job.id, "status": reply.job.status.value})

    async def stdin(self, request: Request, raw_id: str) -> HTTPResponse:
        job_id, user = parse.job_id(raw_id), request.ctx.user
        close = parse.flag(request.args.get("eof"), "eof")
        data = request.body or b""
        deadline = deadline_for(self._executor.timeout)
        reply = await self._executor.call(
            lambda rid: WriteStdin(rid, user, job_id, data, close, deadline),
            StdinWritten,
            unanswered="nothing was written",
        )
        return json({"id": reply.job_id, "accepted": reply.accepted, "closed": reply.closed})


def status_body(job: JobSnapshot) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "reason": job.reason,
        "pid": job.pid,
        "command": job.command,
        "args": list(job.args),
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "isolation": None if job.isolation is None else isolation_body(job.isolation),
    }


def isolation_body(isolation: Isolation) -> dict[str, Any]:
    return {
        "uid": isolation.uid,
        "gid": isolation.gid,
        "pid_namespace": isolation.pid_namespace,
        "mount_namespace": isolation.mount_namespace,
        "network": isolation.network,
        "cgroup": isolation.cgroup,
    }
