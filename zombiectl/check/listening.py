"""Is a process of the tree listening on the port? Socket inodes against /proc/PID/net/tcp*.

Matching the inodes of the listening sockets (`zombiectl.proc.net`) against those each
process holds proves that a process of the tree owns the socket, not some other program
on the same port.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from zombiectl.proc.net import Address, socket_inodes, socket_owners, tcp_listeners


def accepts(listen: Address, host: str) -> bool:
    """True when a socket bound to `listen` takes connections made to `host`."""
    try:
        want = ipaddress.ip_address(host)
    except ValueError:
        return listen.is_unspecified
    if listen.is_unspecified:
        # :: takes IPv4 too (dual stack) unless IPV6_V6ONLY, which /proc does not show.
        return listen.version == want.version or listen.version == 6
    if isinstance(listen, ipaddress.IPv6Address) and listen.ipv4_mapped is not None:
        listen = listen.ipv4_mapped
    return listen == want


def resolve(host: str) -> list[str]:
    """host's addresses ("localhost" -> 127.0.0.1 and ::1); host itself if it is one."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return [host]
    return sorted({str(info[4][0]) for info in infos})


def listening_pid(pids: Iterable[int], host: str, port: int) -> int | None:
    """The first pid among `pids` that owns a socket listening on host:port, else None."""
    pids = list(pids)
    if not pids:
        return None
    hosts = resolve(host)
    wanted = {
        ino
        for addr, p, ino in tcp_listeners(pids[0])
        if p == port and any(accepts(addr, h) for h in hosts)
    }
    if not wanted:
        return None
    for pid in pids:
        if socket_inodes(pid) & wanted:
            return pid
    return None


def ports_of(pids: Iterable[int]) -> list[int]:
    """The ports that any of `pids` listens on, whatever the address, in order."""
    pids = list(pids)
    if not pids:
        return []
    by_inode = {ino: port for _addr, port, ino in tcp_listeners(pids[0])}
    found: set[int] = set()
    for pid in pids:
        found |= {by_inode[ino] for ino in socket_inodes(pid) if ino in by_inode}
    return sorted(found)


def holders(host: str, port: int) -> list[int] | None:
    """The pids that own a socket listening where clients to host:port would connect.

    None: nothing listens there. An empty list: something does, but its owner is not
    visible to us (another user's process, without root).
    """
    hosts = resolve(host)
    wanted = {
        ino
        for addr, p, ino in tcp_listeners("self")
        if p == port and any(accepts(addr, h) for h in hosts)
    }
    if not wanted:
        return None
    return socket_owners(wanted)
