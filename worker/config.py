"""Configuration, built once from flags and environment, then passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_URL = f"https://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_KILL_GRACE = 5.0
DEFAULT_MAX_BODY = 1 << 20
DEFAULT_RATE_LIMIT_MS = 100
DEFAULT_MAX_OUTPUT = 64 << 20
# Beyond these a run request is refused, not truncated: the kernel's own
# ARG_MAX would refuse much the same at exec time, with a worse message.
MAX_ARGS = 4096
MAX_ARG_BYTES = 128 << 10


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    kill_grace: float = DEFAULT_KILL_GRACE
    max_output: int = DEFAULT_MAX_OUTPUT
    # Give each job a cgroup where the host allows it (else track sessions).
    use_cgroups: bool = True


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str
    port: int
    users_file: Path
    cert_file: Path
    key_file: Path
    max_body: int = DEFAULT_MAX_BODY
    rate_limit_ms: int = DEFAULT_RATE_LIMIT_MS
    response_timeout: float = 60.0
    max_output: int = DEFAULT_MAX_OUTPUT  # cap of the copy kept for live followers

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    api: ApiConfig
    executor: ExecutorConfig


@dataclass(frozen=True, slots=True)
class ClientConfig:
    url: str
    ca_file: str
    user: str
    password: str
    json: bool = False
    timeout: float = 30.0
