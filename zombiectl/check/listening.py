"""Is a process of the tree listening on the port? Socket inodes against /proc/PID/net/tcp*.

A listening socket shows in ``/proc/PID/net/tcp`` (and ``tcp6``) of the process's network
namespace as a line in state 0A with its local address and port, and in
``/proc/PID/fd/`` as a link ``socket:[INODE]``. Matching the inodes proves that a process
of the tree owns the socket, not some other program on the same port.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Iterable

TCP_LISTEN = "0A"


def socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            out.add(int(target[8:-1]))
    return out


def parse_address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The kernel prints each 32-bit word of the address in host order."""
    raw = bytes.fromhex(hex_addr)
    words = struct.unpack(f">{len(raw) // 4}I", raw)
    native = struct.pack(f"={len(words)}I", *words)
    return ipaddress.ip_address(native)


def listeners(
    text: str,
) -> Iterable[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int, int]]:
    """(address, port, inode) of every listening socket in one /proc/net/tcp* file."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        addr, _, port = fields[1].partition(":")
        try:
            yield parse_address(addr), int(port, 16), int(fields[9])
        except ValueError:
            continue


def accepts(listen: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> bool:
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
    wanted: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pids[0]}/net/{name}") as f:
                text = f.read()
        except OSError:
            continue
        wanted |= {
            ino
            for addr, p, ino in listeners(text)
            if p == port and any(accepts(addr, h) for h in hosts)
        }
    if not wanted:
        return None
    for pid in pids:
        if socket_inodes(pid) & wanted:
            return pid
    return None


def _listening_sockets(pid: int) -> list[tuple[int, int]]:
    """(port, inode) of every listening socket in pid's network namespace."""
    out: list[tuple[int, int]] = []
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                text = f.read()
        except OSError:
            continue
        out.extend((port, ino) for _addr, port, ino in listeners(text))
    return out


def ports_of(pids: Iterable[int]) -> list[int]:
    """The ports that any of `pids` listens on, whatever the address, in order."""
    pids = list(pids)
    if not pids:
        return []
    by_inode = {ino: port for port, ino in _listening_sockets(pids[0])}
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
    wanted: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/self/net/{name}") as f:
                text = f.read()
        except OSError:
            continue
        wanted |= {
            ino
            for addr, p, ino in listeners(text)
            if p == port and any(accepts(addr, h) for h in hosts)
        }
    if not wanted:
        return None
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and socket_inodes(int(entry)) & wanted:
            pids.append(int(entry))
    return sorted(pids)
