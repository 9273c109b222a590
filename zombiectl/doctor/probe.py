"""`doctor --containers --probe`: make one orphan inside a container and time its reaping.

Needs root. The orphan must be the container's, not the host's: a helper process,
forked here, joins the container's cgroup, closes every descriptor but the two pipes
of the protocol, clears its environment, makes itself non-dumpable (no one in the
container can ptrace it or read its memory), and enters the container's user (when it
has its own), PID and mount namespaces through a pidfd of the container's PID 1, checked
by start time. Only then does it fork A, in the container's PID namespace; A forks B
and exits, so B is an orphan that the container's PID 1 adopts. B waits for the word,
then exits; from then on the clock runs until PID 1 reaps it.

    reaps   reaped within SLOW seconds
    slow    reaped later, within the timeout (an init that polls)
    never   not reaped within the timeout; B stays a zombie of that PID 1 until the
            container stops: the one cost of asking an init that never reaps

Nothing here prints; `zombiectl.doctor.containers` folds the result into its verdict.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc import libc, ns
from zombiectl.proc.containers import Container, cgroup_directory
from zombiectl.proc.identity import namespace_pids, pidfd_supported, read_identity
from zombiectl.proc.pidfd import Pinned
from zombiectl.proc.prctl import set_dumpable
from zombiectl.proc.table import child_pids, open_fds

SLOW = 1.0
# How long the helper and A may take to reach the container, and B to be adopted.
SETUP_TIMEOUT = 5.0


class ProbeResult:
    """What the probe saw: "reaps", "slow", "never", or "error" (with why)."""

    __slots__ = ("detail", "outcome", "seconds")

    def __init__(self, outcome: str, seconds: float | None = None, detail: str = "") -> None:
        self.outcome = outcome
        self.seconds = seconds
        self.detail = detail

    def as_dict(self) -> dict[str, object]:
        seconds = None if self.seconds is None else round(self.seconds, 6)
        return {"outcome": self.outcome, "seconds": seconds, "detail": self.detail or None}


def probe(c: Container, timeout: float, clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """Make one orphan in c and time how long its PID 1 takes to reap it."""
    if not pidfd_supported():
        return ProbeResult("error", detail="pidfd_open does not work here (needs Linux 5.3+)")
    ident = read_identity(c.init_pid)
    pinned = None if ident is None else Pinned.open(c.init_pid, int(ident.starttime))
    if pinned is None:
        return ProbeResult("error", detail="PID 1 exited")
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    helper = -1
    try:
        helper = os.fork()
        if helper == 0:
            _helper(c, pinned.fd, report_w, go_r)  # never returns
        os.close(report_w)
        report_w = -1
        os.close(go_r)
        go_r = -1
        ns_pid = _read_report(report_r, clock() + SETUP_TIMEOUT)
        _reap_helper(helper)
        helper = -1
        if not isinstance(ns_pid, int):
            return ProbeResult("error", detail=f"the orphan was not made: {ns_pid or 'no word'}")
        orphan = _find_adopted(c.init_pid, ns_pid, clock() + SETUP_TIMEOUT, clock)
        if orphan is None:
            return ProbeResult("error", detail="PID 1 did not adopt the orphan")
        os.close(go_w)  # the word: B exits now
        go_w = -1
        return _time_reaping(c.init_pid, orphan, timeout, clock)
    finally:
        pinned.close()
        for fd in (report_r, report_w, go_r, go_w):
            if fd >= 0:
                os.close(fd)
        if helper > 0:
            _reap_helper(helper)


def _read_report(fd: int, deadline: float) -> int | str | None:
    """B's pid in the container's namespace, as A wrote it, or the helper's error;
    None on EOF or timeout."""
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(fd, 32)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\n"):
            text = data.strip()
            if text.startswith(b"E "):
                return text[2:].decode("utf-8", "replace")
            return int(text) if text.isascii() and text.isdigit() else None
    return None


def _reap_helper(pid: int) -> None:
    """The helper exits once A has; bounded all the same (SIGKILL after the deadline)."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def _find_adopted(
    init: int, ns_pid: int, deadline: float, clock: Callable[[], float]
) -> tuple[int, float] | None:
    """(host pid, start time) of the child of init whose innermost pid is ns_pid."""
    while clock() < deadline:
        try:
            kids = child_pids(init)
        except (NoSuchProcess, PermissionDenied):
            return None
        for kid in kids:
            nspid = namespace_pids(kid)
            if not nspid or nspid[-1] != ns_pid:
                continue
            ident = read_identity(kid)
            if ident is not None and ident.ppid == init:
                return kid, ident.starttime
        time.sleep(0.002)
    return None


def _time_reaping(
    init: int, orphan: tuple[int, float], timeout: float, clock: Callable[[], float]
) -> ProbeResult:
    """Poll the orphan from its exit until its pid no longer names it (reaped)."""
    pid, start = orphan
    began = clock()
    interval = 0.0005
    while True:
        ident = read_identity(pid)
        now = clock()
        if ident is None or ident.starttime != start or ident.ppid != init:
            seconds = now - began
            return ProbeResult("reaps" if seconds <= SLOW else "slow", seconds)
        if now - began > timeout:
            return ProbeResult("never", None, f"not reaped within {timeout:g} s")
        time.sleep(interval)
        interval = min(interval * 2, 0.02)


# --------------------------------------------------------------------------- the helper


def _helper(c: Container, pidfd: int, report_w: int, go_r: int) -> None:
    """In the forked helper: enter the container bare, fork A; exit 0 once A is reaped.

    Everything it runs after entering the mount namespace is already imported: a
    container's files are never loaded into zombiectl.
    """
    rc = 1
    try:
        _enter(c, pidfd, report_w, go_r)
        a = os.fork()
        if a == 0:
            _a(report_w, go_r)  # never returns
        os.close(report_w)
        os.close(go_r)
        os.waitpid(a, 0)
        rc = 0
    except BaseException as exc:
        _say(report_w, f"E {exc}")
    finally:
        os._exit(rc)


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, (line.replace("\n", " ")[:200] + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _enter(c: Container, pidfd: int, report_w: int, go_r: int) -> None:
    """Join the container's cgroup, shed the host (descriptors, environment,
    dumpability), then enter its namespaces through the PID 1's pidfd."""
    libc.load()  # now: once in the container's mount namespace, no host file is opened
    _join_cgroup(c)
    keep = {pidfd, report_w, go_r}
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep |= {0, 1, 2}
    os.close(null)
    _close_all_but(keep)
    os.environ.clear()
    flags = ns.to_enter(c.init_pid)
    set_dumpable(False)
    ns.enter(pidfd, flags)
    os.close(pidfd)


def _a(report_w: int, go_r: int) -> None:
    """A, PID n of the container: fork B, say B's pid, exit so that PID 1 adopts B."""
    rc = 1
    try:
        b = os.fork()
        if b == 0:
            _b(report_w, go_r)  # never returns
        os.write(report_w, f"{b}\n".encode())
        rc = 0
    finally:
        os._exit(rc)


def _b(report_w: int, go_r: int) -> None:
    """B: once adopted, wait for the word (the other end closing), then exit."""
    try:
        os.close(report_w)
        deadline = time.monotonic() + SETUP_TIMEOUT
        while os.getppid() != 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        select.select([go_r], [], [], SETUP_TIMEOUT * 2)
    finally:
        os._exit(0)


def _join_cgroup(c: Container) -> None:
    """Move this process into the container's cgroups, every hierarchy it has one in
    (before entering its mount namespace, where /sys/fs/cgroup is the container's)."""
    me = str(os.getpid()).encode()
    for hierarchy, path in c.hierarchies.items():
        directory = cgroup_directory(hierarchy, path)
        if directory is None:
            continue
        try:
            fd = os.open(f"{directory}/cgroup.procs", os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.write(fd, me)
        except OSError:
            pass
        finally:
            os.close(fd)


def _close_all_but(keep: set[int]) -> None:
    for fd in open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
