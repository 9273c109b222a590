"""The inside of a lab parent: the process whose children a demo watches.

`zombiectl.demo.runner` starts ``python -m zombiectl.demo.labproc CONFIG`` in its own process group;
this module runs the strategy's lab function there and tells zombiectl what happens
through JSON lines on file descriptor 3 (the event pipe):

    {"event": "started", "pid": 4242}         a child was started (counts for "reaped")
    {"event": "done"}                         the last start was made (--hold counts from here)
    {"event": "settled"}                      the children have done their work: counts are final
    {"event": "note", "text": "..."}          a line for the user (an address to connect to)
    {"event": "report", "fields": {...}}      extra summary fields (echoes_ok, ...)
    {"event": "error", "kind": "fork", "message": "...", "started": 3}

A strategy whose parameters carry ``exec_fd`` (a checked binary, see `zombiectl.demo.cbuild`)
finds that descriptor at file descriptor 4 (`EXEC_FD`).

The lab parent never exits on its own and never cleans up: after its work it lingers
(like the post's ``time.sleep(100)``) holding its zombies until zombiectl ends it and every
process it made, collects them all and counts what is left. It imports neither click, rich
nor psutil: each demo pays only for an interpreter and the strategy's own imports.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from zombiectl.proc.prctl import set_death_signal

EVENT_FD = 3
# A strategy that runs a checked binary (`demo c`) gets its descriptor here: the lab
# executes the file zombiectl checked, never a path that could be swapped meanwhile.
EXEC_FD = 4
# Test hook: ZOMBIECTL_LAB_FAULT=N makes the lab function fail right after its N-th start,
# so the clean-up of a strategy that raises can be tested with real children running.
FAULT_ENV = "ZOMBIECTL_LAB_FAULT"
FORK_ERRNOS = (errno.EAGAIN, errno.ENOMEM)


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl).

    The request is made after fork, so the parent may already be gone: when `parent`
    (the pid that forked us) is given and is no longer our parent, exit at once.
    A no-op where prctl does not exist.
    """
    try:
        set_death_signal(signal.SIGKILL)
    except OSError:
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def wait_exited_unreaped(pid: int, sentinel: int | None = None) -> None:
    """Block until child `pid` has exited, WITHOUT reaping it (it stays a zombie).

    ``waitid(..., WEXITED | WNOWAIT)`` returns once the child is waitable and leaves it
    waitable: it observes the exit and changes nothing. The demos use it where the
    post relied on a ``sleep`` being long enough, so a count never depends on luck.
    A process that is not our child (forkserver's workers are the server's children)
    is waited for through its multiprocessing sentinel instead.
    """
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return
    except ChildProcessError:
        if sentinel is None:
            raise
    from multiprocessing.connection import wait

    wait([sentinel])


class LabContext:
    """What a lab function gets: ways to tell zombiectl what it does."""

    def __init__(self, fd: int = EVENT_FD, fault_after: int | None = None) -> None:
        self._fd = fd
        self.started_count = 0
        self._fault_after = fault_after
        self.pid = os.getpid()

    def _send(self, **event: Any) -> None:
        data = (json.dumps(event) + "\n").encode()
        try:
            os.write(self._fd, data)
        except (BrokenPipeError, OSError):
            # zombiectl is gone: nothing is watching, and it will kill us anyway.
            os._exit(1)

    def started(self, pid: int) -> None:
        """Report one started child."""
        self.started_count += 1
        self._send(event="started", pid=pid)
        if self._fault_after is not None and self.started_count >= self._fault_after:
            raise RuntimeError(f"fault injected after {self.started_count} starts")

    def done(self) -> None:
        """The last start was made: the --hold clock starts."""
        self._send(event="done")

    def note(self, text: str) -> None:
        self._send(event="note", text=text)

    def report(self, **fields: Any) -> None:
        """Extra fields for the summary; a later report of a field replaces it."""
        self._send(event="report", fields=fields)

    def settled(self) -> None:
        self._send(event="settled")

    def hold(self) -> None:
        """Report that the children's work is done, then linger until zombiectl kills us.

        Lingering keeps every object alive (a Pool, the Process objects), so nothing
        a finalizer would do (join, reap) can happen behind the demo's back.
        """
        self.settled()
        while True:
            signal.pause()

    def error(self, kind: str, message: str) -> None:
        self._send(event="error", kind=kind, message=message, started=self.started_count)


def params_namespace(params: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**params)


def resolve(entry: str) -> Callable[[LabContext, SimpleNamespace], None]:
    module, _, func = entry.partition(":")
    fn: Callable[[LabContext, SimpleNamespace], None] = getattr(
        importlib.import_module(module), func
    )
    return fn


def is_fork_failure(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FORK_ERRNOS


def exec_checked(argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with the checked binary at EXEC_FD (never a path)."""
    os.set_inheritable(EXEC_FD, False)  # the program itself has no use for it
    os.execve(EXEC_FD, argv, env)


def main(argv: list[str]) -> None:
    config = json.loads(argv[0])
    die_with_parent(config["parent"])
    # zombiectl handles Ctrl-C and cleans up the whole group; a terminal's SIGINT never
    # reaches us anyway (own process group), but a stray one must not end the lab early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fault = os.environ.get(FAULT_ENV)
    ctx = LabContext(fault_after=int(fault) if fault else None)
    try:
        fn = resolve(config["entry"])
        fn(ctx, params_namespace(config["params"]))
    except BaseException as err:
        kind = "fork" if is_fork_failure(err) else "exception"
        ctx.error(kind, f"{type(err).__name__}: {err}" if kind == "exception" else str(err))
        # Exit without atexit handlers: multiprocessing's would join children that may
        # never end; zombiectl kills and reaps the rest of the group.
        sys.stderr.flush()
        os._exit(70)
    ctx.hold()


if __name__ == "__main__":
    main(sys.argv[1:])
