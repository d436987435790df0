"""The client's configuration: which server, which CA to trust, who asks.

Apart from worker.config (the server's frozen dataclasses) and a plain
class, not a dataclass: importing dataclasses (with inspect, ast and dis)
and building the server's classes would cost every short CLI command more
than its request does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Final

# worker.config's DEFAULT_HOST and DEFAULT_PORT (a test keeps them the same).
DEFAULT_URL = "https://127.0.0.1:8443"


class ClientConfig:
    """Immutable, as a frozen dataclass: built once from flags, environment
    and the config file, then passed down."""

    __slots__ = ("ca_file", "json", "password", "timeout", "url", "user")

    def __init__(
        self,
        *,
        url: str,
        ca_file: str,
        user: str,
        password: str,
        json: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.url: Final = url
        self.ca_file: Final = ca_file
        self.user: Final = user
        self.password: Final = password
        self.json: Final = json  # print the server's documents as they are
        self.timeout: Final = timeout  # for connecting and for each reply

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):  # set once, in __init__
            raise AttributeError(f"ClientConfig is immutable: cannot change {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ClientConfig is immutable: cannot delete {name!r}")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientConfig):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if name == 'password' else repr(getattr(self, name))}"
            for name in ("url", "ca_file", "user", "password", "json", "timeout")
        )
        return f"ClientConfig({shown})"
