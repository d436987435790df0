"""One error hierarchy for the whole service.

Each error has a stable ``code`` (it crosses the executor pipe and never
changes) and an HTTP status the API answers with. The CLI maps failures to its
``ExitStatus``; nothing else needs to know the classes.
"""

from __future__ import annotations


class WorkerError(Exception):
    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(WorkerError):
    code = "bad_request"
    http_status = 400


class Unauthorized(WorkerError):
    code = "unauthorized"
    http_status = 401


class Forbidden(WorkerError):
    code = "forbidden"
    http_status = 403


class JobNotFound(WorkerError):
    code = "job_not_found"
    http_status = 404

    @classmethod
    def for_job(cls, job_id: int | str) -> JobNotFound:
        return cls(f"job {job_id} not found")


class JobNotRunning(WorkerError):
    code = "job_not_running"
    http_status = 409


class ExecutorUnavailable(WorkerError):
    code = "executor_unavailable"
    http_status = 503


class ConfigError(WorkerError):
    """Bad flags, files or environment at start-up."""

    code = "config"


class UsageError(WorkerError):
    """The command line itself is wrong (the CLI shows its help)."""

    code = "usage"
    http_status = 400


class ConnectionFailed(WorkerError):
    """The client could not reach the server or could not trust it."""

    code = "connection"
    http_status = 503


class ApiError(WorkerError):
    """The server answered with an error; ``http_status`` is what it sent."""

    code = "api"

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class RateLimited(WorkerError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class StdinUnavailable(WorkerError):
    """Standard input cannot take these bytes: closed, or the job is not reading."""

    code = "stdin_unavailable"
    http_status = 409


class ExecutorTimeout(WorkerError):
    """The executor did not answer in time. The request it carried had a
    deadline, so it will not take effect later either: retrying is safe."""

    code = "executor_timeout"
    http_status = 503
    retry_after_ms = 1000


class RequestExpired(WorkerError):
    """The executor got a request after its deadline and refused it (the API
    had stopped waiting for the answer by then)."""

    code = "request_expired"
    http_status = 503


class IdempotencyConflict(WorkerError):
    """An Idempotency-Key that made one request was sent with another."""

    code = "idempotency_conflict"
    http_status = 409


class QuotaExceeded(WorkerError):
    """A user is at one of their quotas; the message says which, with the
    numbers. Not retried by itself: it takes that user to act."""

    code = "quota_exceeded"
    http_status = 429


class KillFailed(WorkerError):
    """Some process of the job could not be confirmed gone (the host refused:
    out of descriptors, say). Retrying the kill is safe."""

    code = "kill_failed"
    http_status = 503


# Errors that cross the executor pipe as (code, message).
_BY_CODE: dict[str, type[WorkerError]] = {
    cls.code: cls
    for cls in (
        WorkerError,
        BadRequest,
        Unauthorized,
        Forbidden,
        JobNotFound,
        JobNotRunning,
        ExecutorUnavailable,
        ConfigError,
        StdinUnavailable,
        KillFailed,
        ExecutorTimeout,
        RequestExpired,
        IdempotencyConflict,
        QuotaExceeded,
    )
}


def from_code(code: str, message: str) -> WorkerError:
    """Rebuild an error that crossed the pipe as ``(code, message)``."""
    return _BY_CODE.get(code, WorkerError)(message)
