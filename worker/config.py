"""Configuration, built once from flags and environment, then passed down.

The client's own (ClientConfig) is worker/client/config.py: a short CLI
command should not pay for importing this module's dataclasses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # nor pathlib, for what only the server uses
    from pathlib import Path

    from worker.protocol import Limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_URL = f"https://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_KILL_GRACE = 5.0
DEFAULT_MAX_BODY = 1 << 20
DEFAULT_RATE_LIMIT_MS = 100
DEFAULT_MAX_OUTPUT = 64 << 20
DEFAULT_UID_RANGE = (61184, 65519)  # systemd's DynamicUser range
DEFAULT_JOB_PIDS = 4096
DEFAULT_MAX_JOB_PIDS = 32768
DEFAULT_MAX_RUNNING_PER_USER = 512
DEFAULT_KEEP_FINISHED = 1000
DEFAULT_KEEP_FOR = 7 * 24 * 3600.0
NETWORKS = ("host", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")
# A job's name: never all digits (that is an ID), and safe in a URL path as is.
JOB_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
JOB_NAME_RULE = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or '_'"
LOG_FORMATS = ("text", "json")
# The executor answers in milliseconds; one silent for this long is stalled.
DEFAULT_EXECUTOR_TIMEOUT = 10.0
# The API's front door (worker/api/frontdoor.py): open connections, in total
# and per peer address, and how long a client may take to say what it wants.
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_CONNECTIONS_PER_PEER = 2048
DEFAULT_MAX_CONNECTIONS_PER_USER = 2048
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MIN_BODY_RATE = 16 << 10  # bytes/s, once DEFAULT_BODY_GRACE has passed
DEFAULT_BODY_GRACE = 5.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 30.0
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
    # Where each user's private directory is, and their uid allocations.
    state_dir: Path | None = None  # None: worker.config.default_state_dir()
    users_file: Path | None = None  # None: the demo users
    uid_range: tuple[int, int] = DEFAULT_UID_RANGE
    # PID and mount namespaces per job, where the host allows them.
    namespaces: bool = True
    network: str = "host"  # what a job gets unless it asks: "host" or "none"
    # Resource limits: what a job gets unless it asks (defaults), and the
    # most it may ask (maxima). None: computed from the host at start.
    limit_defaults: Limits | None = None
    limit_maxima: Limits | None = None
    controllers: tuple[str, ...] = ("memory", "cpu", "pids", "io")
    # Output kept in all, and per user; running jobs per user; retention.
    max_output_total: int | None = None  # None: a tenth of the host's memory
    max_output_per_user: int | None = None  # None: a quarter of the total
    max_running_per_user: int = DEFAULT_MAX_RUNNING_PER_USER
    keep_finished: int = DEFAULT_KEEP_FINISHED  # per user
    keep_for: float = DEFAULT_KEEP_FOR  # seconds after a job ended


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
    executor_timeout: float = DEFAULT_EXECUTOR_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT  # cap of the copy kept for live followers
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_peer: int = DEFAULT_MAX_CONNECTIONS_PER_PEER
    max_connections_per_user: int = DEFAULT_MAX_CONNECTIONS_PER_USER
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    min_body_rate: int = DEFAULT_MIN_BODY_RATE
    body_grace: float = DEFAULT_BODY_GRACE
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT
    kill_grace: float = DEFAULT_KILL_GRACE  # told to a client whose kill takes a while

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The server's log, on stderr: ``level`` one of LOG_LEVELS, ``format``
    one of LOG_FORMATS."""

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    api: ApiConfig
    executor: ExecutorConfig
    log: LogConfig = LogConfig()


def default_state_dir() -> Path:
    """/var/lib/worker for root; else the user's state directory."""
    from pathlib import Path

    if os.geteuid() == 0:
        return Path("/var/lib/worker")
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "worker"
