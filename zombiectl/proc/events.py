"""The kernel's process events connector: fork, exec and exit as they happen (Linux, root).

``with ProcEvents() as ev: events = ev.read()`` gives the events that arrived since
the socket joined, oldest first, each an `Event` (kind "fork", "exec" or "exit").

A netlink socket (``NETLINK_CONNECTOR``) joined to group ``CN_IDX_PROC`` receives one
message per fork, exec and exit of every process on the machine, after one
``PROC_CN_MCAST_LISTEN`` request. Layouts, from ``include/uapi/linux/connector.h`` and
``cn_proc.h``::

    struct nlmsghdr   { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }        16 bytes
    struct cn_msg     { u32 idx; u32 val; u32 seq; u32 ack; u16 len; u16 flags; } 20 bytes
    struct proc_event { u32 what; u32 cpu; u64 timestamp_ns; union event_data; }
      fork: parent_pid, parent_tgid, child_pid, child_tgid
      exec: process_pid, process_tgid
      sid:  process_pid, process_tgid                        (setsid())
      exit: process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid

Only processes matter here (a thread's pid differs from its tgid): a thread's fork and
exit are dropped. Older kernels let only CAP_NET_ADMIN subscribe (recent ones, 6.18 here,
let any user), and only in the initial network namespace; `ProcEvents()` raises OSError
where it is refused, and the caller samples instead. Stdlib only.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_SID = 0x00000080
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_FORK = struct.Struct("=iiii")
_EXEC = struct.Struct("=ii")
_SID = struct.Struct("=ii")
_EXIT = struct.Struct("=iiII")
_EXIT_PARENT = struct.Struct("=ii")
_RCVBUF = 8 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    """One process event. `time` is CLOCK_MONOTONIC seconds (the kernel's timestamp).

    fork: pid is the child, ppid the parent. exec: pid. exit: pid, ppid (0 on kernels
    before 4.18, which do not report it) and the wait status in `status`. sid: pid
    called setsid() (a group of its own; setpgid() has no event).
    """

    kind: str
    pid: int
    ppid: int
    time: float
    status: int | None = None


def listen_message(op: int = PROC_CN_MCAST_LISTEN) -> bytes:
    """The netlink message that subscribes to (or leaves) the process events."""
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid())
    return header + cn


def parse_event(data: bytes) -> Event | None:
    """One struct proc_event; None for kinds and threads that do not concern processes."""
    if len(data) < _EVENT_HEAD.size:
        return None
    what, _cpu, ts = _EVENT_HEAD.unpack_from(data)
    body = data[_EVENT_HEAD.size :]
    t = ts / 1e9
    if what == PROC_EVENT_FORK and len(body) >= _FORK.size:
        _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(body)
        return Event("fork", ctgid, ptgid, t) if cpid == ctgid else None
    if what == PROC_EVENT_EXEC and len(body) >= _EXEC.size:
        pid, tgid = _EXEC.unpack_from(body)
        return Event("exec", tgid, 0, t) if pid == tgid else None
    if what == PROC_EVENT_SID and len(body) >= _SID.size:
        pid, tgid = _SID.unpack_from(body)
        return Event("sid", tgid, 0, t) if pid == tgid else None
    if what == PROC_EVENT_EXIT and len(body) >= _EXIT.size:
        pid, tgid, code, _sig = _EXIT.unpack_from(body)
        if pid != tgid:
            return None
        ppid = 0
        if len(body) >= _EXIT.size + _EXIT_PARENT.size:
            _pp, ppid = _EXIT_PARENT.unpack_from(body, _EXIT.size)
        return Event("exit", pid, ppid, t, code)
    return None


def parse_datagram(buf: bytes) -> list[Event]:
    """Every process event in one datagram (one or more netlink messages)."""
    out: list[Event] = []
    off = 0
    while off + _NLMSGHDR.size <= len(buf):
        length = _NLMSGHDR.unpack_from(buf, off)[0]
        if length < _NLMSGHDR.size or off + length > len(buf):
            break
        cn_off = off + _NLMSGHDR.size
        if cn_off + _CN_MSG.size <= off + length:
            idx, val, _seq, _ack, dlen, _fl = _CN_MSG.unpack_from(buf, cn_off)
            start = cn_off + _CN_MSG.size
            if idx == CN_IDX_PROC and val == CN_VAL_PROC:
                ev = parse_event(buf[start : min(start + dlen, off + length)])
                if ev is not None:
                    out.append(ev)
        off += (length + 3) & ~3
    return out


class ProcEvents:
    """A subscription to the process events connector; a context manager.

    `read()` returns what has arrived, without blocking. `lost` counts the times the
    kernel dropped events because the socket's buffer was full (ENOBUFS): the caller
    then re-reads the tree from /proc to catch up.
    """

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            try:  # a machine busy forking fills the default buffer in moments
                sock.setsockopt(socket.SOL_SOCKET, 33, _RCVBUF)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind((os.getpid(), CN_IDX_PROC))
            sock.send(listen_message())
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.lost = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int = 10000) -> list[Event]:
        out: list[Event] = []
        while len(out) < limit:
            try:
                buf = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == 105:  # ENOBUFS: events were dropped
                    self.lost += 1
                    continue
                raise
            out.extend(parse_datagram(buf))
        return out

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            try:
                self.sock.send(listen_message(PROC_CN_MCAST_IGNORE))
            except OSError:
                pass
            self.sock.close()

    def __enter__(self) -> ProcEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available() -> bool:
    """True when this process may subscribe to the process events (Linux; root on old kernels)."""
    try:
        ProcEvents().close()
    except (OSError, AttributeError):
        return False
    return True
