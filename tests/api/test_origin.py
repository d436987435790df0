from __future__ import annotations

import pytest

from worker.api.origin import is_loopback, require_local
from worker.errors import Forbidden


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_peers_are_local(address: str) -> None:
    assert is_loopback(address)
    require_local(address)


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.1",
        "10.0.0.1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
        "0.0.0.0",
        "",
        None,
        "localhost",
        "127.0.0.1, 10.0.0.1",
        "fe80::1%lo",
    ],
)
def test_anything_else_is_refused(address: str | None) -> None:
    assert not is_loopback(address)
    with pytest.raises(Forbidden) as caught:
        require_local(address)
    assert caught.value.http_status == 403
