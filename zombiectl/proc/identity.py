"""The checks every command makes before it signals a process, and the one safe signal.

Two ways tools that clear zombies go wrong: they signal the zombies' parent when that
parent is the user's own shell or terminal (the zombies' parent is often exactly that),
and they signal a pid read moments earlier, which may since belong to someone else.

- `refusal_reason(pid)` says why a process must never be signalled: PID 1, a kernel
  thread, zombiectl itself or any of its ancestors (`is_self_or_ancestor`).
- `send_signal_safely(target, sig, children)` opens a pidfd on the target first, then
  checks that it is still the process that was planned (same start time) and that one
  of the zombies still names it as parent, and only then signals through the pidfd. A
  pid reused after the pidfd was opened cannot receive the signal: the pidfd refers to
  the old process, and signalling a process that has gone fails with ESRCH.

    >>> t = Target.of(844951)
    >>> t
    Target(pid=844951, starttime=424273, name='python3')
    >>> send_signal_safely(t, signal.SIGCHLD, children=child_pids(844951))
    SendResult(status=<SendStatus.SENT: 'sent'>, via='pidfd', detail='')

Standard library only, so that `run` (which must start fast) can use it too.
"""

from __future__ import annotations

import enum
import errno
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zombiectl.proc.table import ProcIdentity, ancestors_of, read_identity

KTHREADD = 2


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
        return "PID 1 is init: it adopts and reaps orphans for the whole system"
    ident = identity if identity is not None else read_identity(pid)
    if pid == KTHREADD or (ident is not None and ident.is_kernel_thread):
        return "a kernel thread: its children are the kernel's business"
    if pid == os.getpid():
        return "this is zombiectl itself"
    chain = lineage()
    if pid in chain:
        name = f" ({ident.name})" if ident is not None else ""
        return (
            f"an ancestor of zombiectl{name}: ending it could end your own session "
            "(shell, terminal, tmux, sshd)"
        )
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
    GONE = "gone"  # the planned process exited, or its pid now names another process
    MOVED = "moved"  # none of the given children names the target as parent any more


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    via: str  # "pidfd" or "pid+create-time"
    detail: str = ""


_pidfd_cache: list[bool] = []


def pidfd_supported() -> bool:
    """True where pidfd_open(2) and pidfd_send_signal(2) work (Linux 5.3+, Python 3.9+)."""
    if not _pidfd_cache:
        ok = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
        if ok:
            try:
                os.close(os.pidfd_open(os.getpid()))
            except OSError:  # ENOSYS on old kernels, EPERM under some seccomp filters
                ok = False
        _pidfd_cache.append(ok)
    return _pidfd_cache[0]


def _still_the_same(
    target: Target, children: Sequence[int], reader: Callable[[int], ProcIdentity | None]
) -> SendResult | None:
    """None when target is still the planned process and still a zombie's parent."""
    ident = reader(target.pid)
    if ident is None or ident.starttime != target.starttime:
        return SendResult(SendStatus.GONE, "", f"pid {target.pid} is no longer {target.name}")
    if ident.is_zombie:
        return SendResult(SendStatus.GONE, "", f"{target.pid} has exited")
    if children:
        for child in children:
            c = reader(child)
            if c is not None and c.ppid == target.pid and c.is_zombie:
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
    use_pidfd: bool | None = None,
    reader: Callable[[int], ProcIdentity | None] = read_identity,
    opener: Callable[[int], int] | None = None,
    sender: Callable[[int, int], None] | None = None,
) -> SendResult:
    """Signal target only if it is still the planned process (and a parent of children).

    The order is what makes it safe: open a pidfd, *then* re-check, *then* signal
    through the pidfd. Without pidfds, psutil's Process records the create time, the
    same re-check runs, and psutil refuses to signal if the pid was reused since.
    `reader`, `opener` and `sender` exist so tests can stage the race.
    """
    if use_pidfd is None:
        use_pidfd = pidfd_supported()
    if use_pidfd:
        return _send_pidfd(target, sig, children, reader, opener, sender)
    return _send_psutil(target, sig, children, reader, sender)


def _send_pidfd(
    target: Target,
    sig: int,
    children: Sequence[int],
    reader: Callable[[int], ProcIdentity | None],
    opener: Callable[[int], int] | None,
    sender: Callable[[int, int], None] | None,
) -> SendResult:
    via = "pidfd"
    try:
        fd = (opener or os.pidfd_open)(target.pid)
    except ProcessLookupError:
        return SendResult(SendStatus.GONE, via, f"{target.pid} has exited")
    except OSError as err:  # EINVAL: a thread id, not a process
        return SendResult(SendStatus.GONE, via, f"cannot open a pidfd on {target.pid}: {err}")
    try:
        stale = _still_the_same(target, children, reader)
        if stale is not None:
            return SendResult(stale.status, via, stale.detail)
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
    children: Sequence[int],
    reader: Callable[[int], ProcIdentity | None],
    sender: Callable[[int, int], None] | None,
) -> SendResult:
    import psutil

    via = "pid+create-time"
    try:
        proc = psutil.Process(target.pid)  # records the create time it will check again
    except psutil.NoSuchProcess:
        return SendResult(SendStatus.GONE, via, f"{target.pid} has exited")
    except psutil.AccessDenied:
        return SendResult(SendStatus.DENIED, via, "permission denied")
    stale = _still_the_same(target, children, reader)
    if stale is not None:
        return SendResult(stale.status, via, stale.detail)
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
