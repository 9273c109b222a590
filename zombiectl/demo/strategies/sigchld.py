"""`demo sigchld`: a SIGCHLD handler that reaps every exited child, the classic server fix."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies.fork import child, fork_children
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    reaped = []

    def on_sigchld(signum: int, frame: object) -> None:
        while True:  # signals coalesce: one SIGCHLD may stand for several exits
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # no children left at all
                return
            if pid == 0:  # children remain, but none has exited
                return
            reaped.append(pid)

    signal.signal(signal.SIGCHLD, on_sigchld)
    fork_children(ctx, p)
    while len(reaped) < p.count:  # the parent goes on with its work; the handler reaps
        time.sleep(0.01)
    ctx.hold()


STRATEGY = Strategy(
    name="sigchld",
    title="SIGCHLD handler looping waitpid(-1, WNOHANG)",
    kind="remedy",
    entry=f"{__name__}:lab",
    model=lambda p, method: 0,
    model_text="expected = 0: the handler reaps each child as it exits.",
    why=(
        "The kernel sends SIGCHLD to the parent when a child exits. The handler loops "
        "waitpid(-1, WNOHANG) until it returns 0 (children left, none exited) or fails "
        "with ECHILD (no children): a single SIGCHLD may stand for several exits, because "
        "a signal that is already pending is not queued twice. One call per signal would "
        "leave zombies under load. The parent never blocks in wait()."
    ),
    fix=(
        "This is the fix for a forking server (the TCP lab's --reap sigchld). In Python, "
        "handlers run in the main thread between bytecodes; the loop in the handler is "
        "what matters."
    ),
    source=(lab, fork_children, child),
    order=120,
)
