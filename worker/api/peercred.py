"""Which Unix user owns the client end of a loopback TCP connection.

Every client is on loopback, so the peer address says nothing about who is
calling. The kernel knows, though: a NETLINK_SOCK_DIAG exact lookup of the
client's socket by its four addresses returns the uid that created it (what
``ss -e`` shows), in tens of microseconds. One netlink socket serves the whole
process; the lookup is a blocking send and receive of one small datagram, so
it is cheap enough for the event loop, and it is made once per connection.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from typing import Any

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
ALL_TCP_STATES = 0xFFFFFFFF

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_REQUEST = struct.Struct("=BBBBI")  # struct inet_diag_req_v2, up to its socket id
_PORTS = struct.Struct("!HH")  # inet_diag_sockid: sport, dport (network order)
_TAIL = struct.Struct("=III")  # inet_diag_sockid: interface, cookie
_UID_OFFSET = _HEADER.size + 64  # idiag_uid in struct inet_diag_msg
# A reply that never comes must not hold up the event loop for long.
TIMEOUT = 0.05


Address = tuple[Any, ...]


class PeerUids:
    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._broken = False
        self._seq = itertools.count(1)

    @property
    def available(self) -> bool:
        """False once the host has refused us sock_diag (no module, no netlink)."""
        return not self._broken and self._socket() is not None

    def uid(self, peer: Address | None, local: Address | None) -> int | None:
        """The uid owning the socket at ``peer`` that is connected to ``local``
        (this server's end), or None if the kernel does not say."""
        body = _query(peer, local)
        sock = self._socket()
        if body is None or sock is None:
            return None
        seq = next(self._seq) & 0xFFFFFFFF
        header = _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0)
        try:
            sock.send(header + body)
            # A late answer to an earlier, timed-out question may come first.
            for _ in range(4):
                reply = sock.recv(4096)
                if len(reply) >= _HEADER.size and _HEADER.unpack_from(reply)[3] == seq:
                    return _parse(reply)
        except OSError:
            return None
        return None

    def _socket(self) -> socket.socket | None:
        if self._sock is None and not self._broken:
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
                sock.settimeout(TIMEOUT)
            except (OSError, AttributeError):
                self._broken = True  # not Linux, or netlink is not allowed here
                return None
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _query(peer: Address | None, local: Address | None) -> bytes | None:
    """The inet_diag request body for the client socket (peer -> local)."""
    if not peer or not local:
        return None
    try:
        src, dst = _ip(peer[0]), _ip(local[0])
        sport, dport = int(peer[1]), int(local[1])
    except (ValueError, TypeError, IndexError):
        return None
    if src.version != dst.version:
        return None
    family = socket.AF_INET if src.version == 4 else socket.AF_INET6
    return (
        _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_TCP_STATES)
        + _PORTS.pack(sport, dport)
        + src.packed.ljust(16, b"\0")
        + dst.packed.ljust(16, b"\0")
        + _TAIL.pack(0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    )


def _ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(str(text).split("%", 1)[0])
    # A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d, while the
    # client's own socket is a plain IPv4 one.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse(reply: bytes) -> int | None:
    kind = _HEADER.unpack_from(reply)[1]
    if kind == NLMSG_ERROR or kind != SOCK_DIAG_BY_FAMILY or len(reply) < _UID_OFFSET + 8:
        return None
    uid, inode = struct.unpack_from("=II", reply, _UID_OFFSET)
    # A socket its owner has closed (FIN-WAIT, TIME-WAIT) has no inode any
    # more and reads as uid 0: that is nobody's, not root's.
    return None if inode == 0 else int(uid)
