"""Start CMD as a member: its own process group, its own user if asked, armed to die with us.

fork + exec with a close-on-exec pipe that carries errno back when exec fails (the pipe
reads EOF when exec succeeds), the way subprocess does it. In the child, in this order:
a process group of its own; the standard streams; the user's credentials (supplementary
groups cleared, then the group, then the user); only then ``PR_SET_PDEATHSIG``, since a
change of uid clears it; default signal dispositions and an empty mask; exec.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from zombiectl.errors import ResourceLimit
from zombiectl.init.reaper import (
    _RESET_IN_CHILD,
    ExecFailed,
    _execvp,
    exec_failure,
    report_exec_failure,
)
from zombiectl.proc.prctl import set_death_signal

EXIT_SETUP_FAILED = 127


@dataclass(frozen=True)
class Credentials:
    """Whom CMD runs as: `--user USER`."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Streams:
    """Descriptors to give CMD as 0, 1 and 2 (None: inherit zombiectl's)."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


def spawn(argv: list[str], streams: Streams, user: Credentials | None = None) -> int:
    """CMD's pid; ExecFailed if it cannot run, ResourceLimit if no process can be made."""
    parent = os.getpid()
    r, w = os.pipe()  # Python makes both ends close-on-exec
    try:
        pid = os.fork()
    except OSError as err:
        os.close(r)
        os.close(w)
        raise ResourceLimit(f"cannot start {argv[0]}: {err.strerror}") from None
    if pid == 0:  # pragma: no cover - runs in the child, which execs or _exits
        try:
            os.close(r)
            _child(argv, streams, user, parent)
        except BaseException as err:
            report_exec_failure(w, err, EXIT_SETUP_FAILED)
        report_exec_failure(w, OSError(1, "exec returned"), EXIT_SETUP_FAILED)
    os.close(w)
    failure = exec_failure(r)
    if failure is not None:
        _collect(pid)
        raise ExecFailed(argv[0], failure)
    return pid


def _child(  # pragma: no cover - runs in the child
    argv: list[str], streams: Streams, user: Credentials | None, parent: int
) -> None:
    os.setpgid(0, 0)
    for fd, target in ((streams.stdin, 0), (streams.stdout, 1), (streams.stderr, 2)):
        if fd is not None:
            os.dup2(fd, target)
    if user is not None:
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)
    set_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # zombiectl died before the death signal was armed
        os._exit(EXIT_SETUP_FAILED)
    for sig in _RESET_IN_CHILD:
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _execvp(argv)


def _collect(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
