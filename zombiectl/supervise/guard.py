"""The guard: a process that ends the tree if zombiectl itself is killed (SIGKILL).

It is forked before anything else, keeps its own membership of the tree, and when
zombiectl is gone (its pipe reads end-of-file) ends every member, and only members.

Its membership comes from the kernel, not from zombiectl: it subscribes to the process
events itself, before zombiectl starts anything, and applies the same rules (`Tree`): a
process forked by zombiectl or by a member is a member. A fork flood cannot block that
channel; when the kernel drops events (its buffer full), the guard reads the tree again
from /proc. Without process events it samples zombiectl's descendants.
"""

from __future__ import annotations

import os
import select
import signal
import time

from zombiectl.errors import ResourceLimit
from zombiectl.proc.events import ProcEvents
from zombiectl.proc.pidfd import starttime_of
from zombiectl.proc.prctl import set_name
from zombiectl.supervise.observer import Observer
from zombiectl.supervise.teardown import end_members
from zombiectl.supervise.tree import Tree

READY_TIMEOUT = 10.0  # seconds zombiectl waits for the guard to subscribe
END_DEADLINE = 10.0  # seconds the guard keeps ending a tree that will not die
CLOSE_WAIT = 0.5  # seconds zombiectl waits for the guard to exit after a clean end
GUARD_SAMPLE = 0.1  # seconds between samples where the guard has no process events


class Guard:
    """zombiectl's side: start the guard, and close it once the tree has been ended."""

    def __init__(self, sampled: bool = False) -> None:
        me = os.getpid()
        r, w = os.pipe()
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as err:
            for fd in (r, w, ready_r, ready_w):
                os.close(fd)
            raise ResourceLimit(f"cannot start the guard process: {err.strerror}") from None
        if pid == 0:  # pragma: no cover - runs in the forked guard
            code = 1
            try:
                os.close(w)
                os.close(ready_r)
                _serve(me, r, ready_w, sampled)
                code = 0
            finally:
                os._exit(code)
        os.close(r)
        os.close(ready_w)
        os.set_blocking(w, False)
        self.pid = pid
        self._w: int | None = w
        try:
            ok = _wait_ready(ready_r)
        finally:
            os.close(ready_r)
        if not ok:
            self.close()
            raise ResourceLimit("the guard process did not start")

    def tell(self, pid: int, starttime: int | None) -> None:
        """A root zombiectl started: the guard knows it even before its fork event is read
        (or without events). Never blocks: a full pipe drops it, the guard samples too."""
        if self._w is None or starttime is None:
            return
        try:
            os.write(self._w, f"+{pid} {starttime}\n".encode())
        except OSError:
            pass

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Tell the guard the end is clean; wait a moment for it to exit."""
        if self._w is not None:
            os.close(self._w)
            self._w = None
        deadline = time.monotonic() + wait
        while True:
            try:
                got, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if got or time.monotonic() >= deadline:
                return  # still ending a stuck member: it goes on without zombiectl
            time.sleep(0.005)


def _wait_ready(fd: int) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            return os.read(fd, 1) == b"1"
    return False


def _serve(me: int, r: int, ready_w: int, sampled: bool) -> None:  # pragma: no cover - in the guard
    # A session of its own: a signal to zombiectl's process group (Ctrl-C, kill -9
    # -PGID, the terminal hanging up) does not reach the guard.
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    keep = sorted({0, 1, 2, r, ready_w})
    for low, high in zip(keep, [*keep[1:], 65536], strict=True):
        os.closerange(low + 1, high)
    set_name(b"zombiectl-guard")
    events = None
    if not sampled:
        try:
            events = ProcEvents()
        except (OSError, AttributeError):
            events = None
    tree = Tree(0, me, time.monotonic())
    tree.ignore.add(os.getpid())
    observer = Observer(tree, events, GUARD_SAMPLE, watch_exited=False)
    observer.started_after = starttime_of(os.getpid()) or 0
    os.write(ready_w, b"1")
    os.close(ready_w)
    fds = [r] + ([events.fileno()] if events is not None else [])
    buf = b""
    while True:
        ready, _, _ = select.select(fds, [], [], max(0.001, observer.timeout()))
        if r in ready:
            data = _read_all(r)
            if data is None:
                break
            buf = _told(tree, buf + data)
        observer.step()
    observer.step()  # what zombiectl's last moments made, still by the rules of its life
    tree.me_alive = False
    end_members(observer, lambda: None, time.monotonic() + END_DEADLINE)


def _read_all(fd: int) -> bytes | None:
    """None once zombiectl's end of the pipe is closed (it exited, however)."""
    return os.read(fd, 4096) or None


def _told(tree: Tree, buf: bytes) -> bytes:
    """Apply each whole "+PID STARTTIME" line; return what is left of an unfinished one."""
    *lines, rest = buf.split(b"\n")
    for line in lines:
        parts = line[1:].split()
        if line.startswith(b"+") and len(parts) == 2 and all(p.isdigit() for p in parts):
            tree.fork(int(parts[0]), tree.me, time.monotonic(), int(parts[1]))
    return rest[-64:]
