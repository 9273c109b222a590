"""The checks every command makes before it signals a process, and the one safe signal.

Two ways tools that clear zombies go wrong: they signal the zombies' parent when that
parent is the user's own shell or terminal (the zombies' parent is often exactly that),
and they signal a pid read moments earlier, which may since belong to someone else.

- `refusal_reason(pid)` says why a process must never be signalled: PID 1, a kernel
  thread (by its PF_KTHREAD flag, never by its pid), zombiectl itself or any of its
  ancestors (`is_self_or_ancestor`).
- `namespace_init_reason(pid)` says why a process may be nudged but never ended: it is
  PID 1 of a PID namespace of its own (a container's init), and SIGTERM or SIGKILL to
  it ends every process in that namespace. `send_signal_safely` enforces it too, on
  the process its pidfd names.
- `send_signal_safely(target, sig, children)` opens a pidfd on the target first, then
  checks that it is still the process that was planned (same start time) and that one
  of the zombies still names it as parent, and only then signals through the pidfd. A
  pid reused after the pidfd was opened cannot receive the signal: the pidfd refers to
  the old process, and signalling a process that has gone fails with ESRCH.

Where pidfds are missing (Linux before 5.3) the signal goes through psutil, which checks
the create time again just before it signals.

What `reap --verbose` logs from it (a shell transcript; the parent ignores the nudge):

    $ zombiectl reap --pid 28642 --yes --verbose --timeout 0.2 >/dev/null
    zombiectl: SIGCHLD -> 28642 (python3) via pidfd: sent
"""

from __future__ import annotations

import enum
import errno
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from zombiectl.proc.files import bcat, cat, have_proc, pid_path
from zombiectl.proc.records import ProcIdentity
from zombiectl.proc.table import PSUTIL_STATES, Stat, ancestors_of, parse_nspid
from zombiectl.untrusted import for_json

ENDING_SIGNALS = (signal.SIGTERM, signal.SIGKILL)
NAMESPACE_INIT = (
    "the init (PID 1) of its own PID namespace, a container's init: SIGTERM or SIGKILL "
    "would end every process in that container, so it is only nudged (SIGCHLD)"
)


def read_identity(pid: int) -> ProcIdentity | None:
    """pid's identity, or None when it does not exist (any more) or cannot be read."""
    if have_proc():
        raw = bcat(pid_path(pid, "stat"))
        if raw is None:
            return None
        try:
            stat = Stat(raw)
            return ProcIdentity(pid, stat.ppid, stat.state, stat.name, stat.flags, stat.starttime)
        except (ValueError, IndexError):  # an empty read: the process went in between
            return None
    import psutil

    try:
        p = psutil.Process(pid)
        with p.oneshot():
            state = PSUTIL_STATES.get(p.status(), "?")
            return ProcIdentity(pid, p.ppid(), state, for_json(p.name()), 0, p.create_time())
    except psutil.Error:
        return None


def lineage(pid: int | None = None) -> list[int]:
    """pid (default: this process) followed by its ancestors, nearest first."""
    me = os.getpid() if pid is None else pid
    return [me, *(p.pid for p in ancestors_of(me))]


def is_self_or_ancestor(pid: int) -> bool:
    """The one "is this me, or my shell, tmux, sshd, ...?" test every command uses.

    Read afresh on every call: an ancestor that exits re-parents zombiectl.
    """
    return pid in lineage()


def refusal_reason(pid: int, identity: ProcIdentity | None = None) -> str | None:
    """Why pid must never be signalled by zombiectl, or None when it may be."""
    if pid == 0:
        return "the parent is outside this PID namespace"
    if pid == 1:
        return (
            "PID 1 is init: ending it ends every process in this PID namespace (the whole "
            "system, or the whole container); if it holds zombies, restart it with an init "
            "that reaps (`docker run --init`, tini, `zombiectl run --`)"
        )
    ident = identity if identity is not None else read_identity(pid)
    # By flag, not by pid: inside a PID namespace pid 2 is an ordinary process.
    if ident is not None and ident.is_kernel_thread:
        if ident.ppid == 0:
            return "kthreadd, the kernel's thread creator: its children are kernel threads"
        return "a kernel thread: its children are the kernel's business"
    if pid == os.getpid():
        return "this is zombiectl itself"
    if is_self_or_ancestor(pid):
        name = f" ({ident.name})" if ident is not None else ""
        return (
            f"an ancestor of zombiectl{name}: ending it could end your own session "
            "(shell, terminal, tmux, sshd)"
        )
    return None


# --------------------------------------------------------------------------- namespaces


def namespace_pids(pid: int) -> tuple[int, ...] | None:
    """pid's number in each PID namespace from /proc's down to its own, or None."""
    text = cat(pid_path(pid, "status"))
    return None if text is None else parse_nspid(text) or None


def pidfd_namespace_pids(fd: int, pid: int | None = None) -> tuple[int, ...] | None:
    """The same, read through a pidfd: about the very process the descriptor names.

    Older kernels show no `NSpid:` for a pidfd; there, pid's status file stands in
    (given pid, already re-checked by start time).
    """
    text = cat(pid_path("self", "fdinfo", str(fd)))
    nspids = None if text is None else parse_nspid(text) or None
    if nspids is None and pid is not None:
        return namespace_pids(pid)
    return nspids


def is_namespace_init(nspids: Sequence[int] | None) -> bool:
    """True for PID 1 of some PID namespace: its pid in its own namespace is 1."""
    return nspids is not None and len(nspids) > 0 and nspids[-1] == 1


def namespace_init_reason(pid: int, nspids: Sequence[int] | None = None) -> str | None:
    """Why pid may be nudged but never sent SIGTERM or SIGKILL, or None.

    PID 1 of zombiectl's own namespace is refused outright by `refusal_reason`; this
    is about the init of any other namespace, such as a container's.
    """
    if nspids is None:
        nspids = namespace_pids(pid)
    if pid != 1 and is_namespace_init(nspids):
        return NAMESPACE_INIT
    return None


# --------------------------------------------------------------------------- signalling


@dataclass(frozen=True)
class Target:
    """A process as it was when the plan was made: its pid and its start time."""

    pid: int
    starttime: float
    name: str = "?"

    @classmethod
    def of(cls, pid: int) -> Target | None:
        ident = read_identity(pid)
        if ident is None:
            return None
        return cls(pid, ident.starttime, ident.name)


class SendStatus(enum.Enum):
    SENT = "sent"
    DENIED = "denied"  # EPERM: someone else's process
    REFUSED = "refused"  # an ending signal to a PID namespace's init
    GONE = "gone"  # the planned process exited, or its pid now names another process
    MOVED = "moved"  # none of the given children names the target as parent any more


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    via: str  # "pidfd" or "pid+create-time"
    detail: str = ""


_pidfd_cache: list[tuple[bool, str]] = []


def pidfd_support() -> tuple[bool, str]:
    """Whether pidfd_open(2) and pidfd_send_signal(2) work here, and why (`doctor` shows it)."""
    if not _pidfd_cache:
        _pidfd_cache.append(_probe_pidfd())
    return _pidfd_cache[0]


def _probe_pidfd() -> tuple[bool, str]:
    if not hasattr(os, "pidfd_open") or not hasattr(signal, "pidfd_send_signal"):
        return False, "this Python has no os.pidfd_open"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as err:  # ENOSYS on old kernels, EPERM under some seccomp filters
        return False, f"pidfd_open failed: {err.strerror} (needs Linux 5.3+)"
    return True, "pidfd_open works: a signal can be sent without risk of pid reuse"


def pidfd_supported() -> bool:
    """True where pidfd_open(2) and pidfd_send_signal(2) work (Linux 5.3+, Python 3.9+)."""
    return pidfd_support()[0]


def _still_the_same(
    target: Target,
    children: Sequence[int],
    reader: Callable[[int], ProcIdentity | None],
    child_starts: Mapping[int, float] | None = None,
) -> SendResult | None:
    """None when target is still the planned process and still a zombie's parent.

    With `child_starts` (pid -> start time) a child counts only while its pid still
    names the same zombie: a reaped zombie's pid reused by another proves nothing.
    """
    ident = reader(target.pid)
    if ident is None or ident.starttime != target.starttime:
        return SendResult(SendStatus.GONE, "", f"pid {target.pid} is no longer {target.name}")
    if ident.is_zombie:
        return SendResult(SendStatus.GONE, "", f"{target.pid} has exited")
    if children:
        for child in children:
            c = reader(child)
            if c is None or c.ppid != target.pid or not c.is_zombie:
                continue
            if child_starts is None or child_starts.get(child, c.starttime) == c.starttime:
                break
        else:
            return SendResult(
                SendStatus.MOVED, "", f"no zombie names {target.pid} as its parent any more"
            )
    return None


def send_signal_safely(
    target: Target,
    sig: int,
    children: Sequence[int] = (),
    *,
    child_starts: Mapping[int, float] | None = None,
    use_pidfd: bool | None = None,
    reader: Callable[[int], ProcIdentity | None] = read_identity,
    opener: Callable[[int], int] | None = None,
    sender: Callable[[int, int], None] | None = None,
    nspid_reader: Callable[[int], tuple[int, ...] | None] | None = None,
) -> SendResult:
    """Signal target only if it is still the planned process (and a parent of children).

    The order is what makes it safe: open a pidfd, *then* re-check, *then* signal
    through the pidfd. Without pidfds, psutil's Process records the create time, the
    same re-check runs, and psutil refuses to signal if the pid was reused since.
    SIGTERM and SIGKILL are never sent to a PID namespace's init, whatever the caller
    planned: the pidfd's own fdinfo says which process it names.
    `reader`, `opener`, `sender` and `nspid_reader` exist so tests can stage the race.
    """
    if use_pidfd is None:
        use_pidfd = pidfd_supported()
    check = _Check(children, child_starts, reader)
    if use_pidfd:
        return _send_pidfd(target, sig, check, opener, sender, nspid_reader)
    return _send_psutil(target, sig, check, sender, nspid_reader)


@dataclass(frozen=True)
class _Check:
    """What is re-checked after the target is pinned (pidfd opened, create time recorded)."""

    children: Sequence[int]
    child_starts: Mapping[int, float] | None
    reader: Callable[[int], ProcIdentity | None]

    def stale(self, target: Target) -> SendResult | None:
        return _still_the_same(target, self.children, self.reader, self.child_starts)


def _ending_refused(sig: int, nspids: tuple[int, ...] | None, via: str) -> SendResult | None:
    if sig in ENDING_SIGNALS and is_namespace_init(nspids):
        return SendResult(SendStatus.REFUSED, via, NAMESPACE_INIT)
    return None


def _send_pidfd(
    target: Target,
    sig: int,
    check: _Check,
    opener: Callable[[int], int] | None,
    sender: Callable[[int, int], None] | None,
    nspid_reader: Callable[[int], tuple[int, ...] | None] | None,
) -> SendResult:
    via = "pidfd"

    def nspids(fd: int) -> tuple[int, ...] | None:
        if nspid_reader is not None:
            return nspid_reader(fd)
        return pidfd_namespace_pids(fd, target.pid)

    try:
        fd = (opener or os.pidfd_open)(target.pid)
    except ProcessLookupError:
        return SendResult(SendStatus.GONE, via, f"{target.pid} has exited")
    except OSError as err:  # EINVAL: a thread id, not a process
        return SendResult(SendStatus.GONE, via, f"cannot open a pidfd on {target.pid}: {err}")
    try:
        stale = check.stale(target)
        if stale is not None:
            return SendResult(stale.status, via, stale.detail)
        refused = _ending_refused(sig, nspids(fd), via)
        if refused is not None:
            return refused
        try:
            (sender or signal.pidfd_send_signal)(fd, sig)
        except ProcessLookupError:
            return SendResult(SendStatus.GONE, via, f"{target.pid} has exited")
        except PermissionError:
            return SendResult(SendStatus.DENIED, via, "permission denied (EPERM)")
        return SendResult(SendStatus.SENT, via)
    finally:
        os.close(fd)


def _send_psutil(
    target: Target,
    sig: int,
    check: _Check,
    sender: Callable[[int, int], None] | None,
    nspid_reader: Callable[[int], tuple[int, ...] | None] | None,
) -> SendResult:
    import psutil

    via = "pid+create-time"
    try:
        proc = psutil.Process(target.pid)  # records the create time it will check again
    except psutil.NoSuchProcess:
        return SendResult(SendStatus.GONE, via, f"{target.pid} has exited")
    except psutil.AccessDenied:
        return SendResult(SendStatus.DENIED, via, "permission denied")
    stale = check.stale(target)
    if stale is not None:
        return SendResult(stale.status, via, stale.detail)
    refused = _ending_refused(sig, (nspid_reader or namespace_pids)(target.pid), via)
    if refused is not None:
        return refused
    try:
        if sender is not None:
            sender(target.pid, sig)
        else:
            proc.send_signal(sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return SendResult(SendStatus.GONE, via, f"{target.pid} has exited or was reused")
    except (psutil.AccessDenied, PermissionError):
        return SendResult(SendStatus.DENIED, via, "permission denied (EPERM)")
    except OSError as err:
        if err.errno == errno.EPERM:
            return SendResult(SendStatus.DENIED, via, "permission denied (EPERM)")
        raise
    return SendResult(SendStatus.SENT, via)
