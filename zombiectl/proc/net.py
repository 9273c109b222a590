"""Listening TCP sockets and who owns them: /proc/PID/net/tcp* and /proc/PID/fd.

A listening socket shows in ``/proc/PID/net/tcp`` (and ``tcp6``) of the process's network
namespace as a line in state 0A with its local address and port, and in
``/proc/PID/fd/`` as a link ``socket:[INODE]``.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Iterator

from zombiectl.proc.files import pid_path, proc_path

TCP_LISTEN = "0A"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets pid holds open (empty when it cannot be read)."""
    out: set[int] = set()
    try:
        names = os.listdir(pid_path(pid, "fd"))
    except OSError:
        return out
    for name in names:
        try:
            target = os.readlink(pid_path(pid, "fd", name))
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            out.add(int(target[8:-1]))
    return out


def parse_address(hex_addr: str) -> Address:
    """The kernel prints each 32-bit word of the address in host order."""
    raw = bytes.fromhex(hex_addr)
    words = struct.unpack(f">{len(raw) // 4}I", raw)
    native = struct.pack(f"={len(words)}I", *words)
    return ipaddress.ip_address(native)


def listeners(text: str) -> Iterable[tuple[Address, int, int]]:
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


def tcp_listeners(pid: int | str) -> Iterator[tuple[Address, int, int]]:
    """(address, port, inode) of every listening TCP socket, IPv4 and IPv6, in pid's
    network namespace."""
    for name in ("tcp", "tcp6"):
        try:
            # Not one bounded read: a busy host's table is long, and the kernel writes it.
            with open(pid_path(pid, "net", name)) as f:
                text = f.read()
        except OSError:
            continue
        yield from listeners(text)


def socket_owners(inodes: set[int]) -> list[int]:
    """The pids, among all this process can see, that hold a socket of `inodes` open."""
    if not inodes:
        return []
    try:
        entries = os.listdir(proc_path())
    except OSError:
        return []
    return sorted(int(e) for e in entries if e.isdigit() and socket_inodes(int(e)) & inodes)
