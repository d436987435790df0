"""Only local requests: the socket peer must be a loopback address.

The peer is taken from the connection itself; forwarded headers
(``X-Forwarded-For``, ``Forwarded``) and proxy settings never count.
"""

from __future__ import annotations

import ipaddress

from worker.errors import Forbidden

REFUSED = "only local requests are accepted"


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def require_local(peer_ip: str | None) -> None:
    if not is_loopback(peer_ip):
        raise Forbidden(REFUSED)
