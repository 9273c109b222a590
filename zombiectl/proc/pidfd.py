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
import time

from zombiectl.proc.identity import pidfd_supported, read_identity


def starttime_of(pid: int) -> int | None:
    """pid's start time (clock ticks after boot), or None when it is gone."""
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
        if pidfd_supported():
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
    except ChildProcessError:
        return None
    return status if got == pid else None


_TICK = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
# How far a start time read from /proc may lie from the fork event that announced it: the
# clock tick it is truncated to, and a margin for the two clocks read apart.
_START_SLACK = 0.05


def started_at(starttime: int, event_time: float) -> bool:
    """Whether a process that started at `starttime` (ticks after boot) is the one a fork
    event at `event_time` (CLOCK_MONOTONIC seconds) announced.

    The pid in a fork event may have been reused by the time /proc is read (pid_max is
    often 32768, and a fork flood wraps it in moments); the start time tells them apart.
    """
    try:
        offset = time.clock_gettime(time.CLOCK_BOOTTIME) - time.clock_gettime(time.CLOCK_MONOTONIC)
    except (AttributeError, OSError):
        return True  # no boot-time clock to compare with: trust the pid
    started = starttime * _TICK
    at = event_time + offset
    return at - _TICK - _START_SLACK <= started <= at + _START_SLACK
