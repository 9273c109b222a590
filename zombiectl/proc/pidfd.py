"""A process pinned by pid and start time: signalled and collected only while it is that process.

`Pinned.open(pid, starttime)` opens a pidfd first and then checks the start time, so the
descriptor names the planned process or nothing: a pid reused after the check cannot
receive a signal sent through it. Where pidfds are missing (Linux before 5.3) the start
time is checked again right before each signal, which leaves a window of a few
microseconds that pidfds close. Standard library only.
"""

from __future__ import annotations

import os
import signal

from zombiectl.proc.table import read_identity


def _has_pidfd() -> bool:
    return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


_PIDFD: list[bool] = []


def pidfd_works() -> bool:
    if not _PIDFD:
        ok = _has_pidfd()
        if ok:
            try:
                os.close(os.pidfd_open(os.getpid()))
            except OSError:
                ok = False
        _PIDFD.append(ok)
    return _PIDFD[0]


def starttime_of(pid: int) -> int | None:
    ident = read_identity(pid)
    return None if ident is None else int(ident.starttime)


class Pinned:
    """One process held by pid and start time; close() releases the descriptor."""

    def __init__(self, pid: int, starttime: int, fd: int) -> None:
        self.pid = pid
        self.starttime = starttime
        self.fd = fd  # -1 without pidfds

    @classmethod
    def open(cls, pid: int, starttime: int) -> Pinned | None:
        """The process if pid still names the one that started at `starttime`, else None."""
        fd = -1
        if pidfd_works():
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # ESRCH: gone; EINVAL: not a process
                return None
        if starttime_of(pid) != starttime:
            if fd >= 0:
                os.close(fd)
            return None
        return cls(pid, starttime, fd)

    def signal(self, sig: int) -> bool:
        """Send sig; False when the process has gone or may not be signalled."""
        try:
            if self.fd >= 0:
                signal.pidfd_send_signal(self.fd, sig)
            elif starttime_of(self.pid) == self.starttime:
                os.kill(self.pid, sig)
            else:
                return False
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def signal_pinned(pid: int, starttime: int, sig: int) -> bool:
    """Signal pid only if it is still the process that started at `starttime`."""
    p = Pinned.open(pid, starttime)
    if p is None:
        return False
    try:
        return p.signal(sig)
    finally:
        p.close()


def collect(pid: int) -> int | None:
    """Reap pid if it is a child of this process that has exited; its wait status, else None.

    The pid can be trusted: a zombie child keeps its pid until this very process reaps it.
    """
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, InterruptedError):
        return None
    return status if got == pid else None
