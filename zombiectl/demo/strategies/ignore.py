"""`demo ignore`: SIGCHLD set to SIG_IGN, so the kernel reaps the children itself."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies.fork import child, fork_children
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # "I will never wait": the kernel reaps
    fork_children(ctx, p)
    try:
        os.waitpid(-1, 0)  # blocks until every child has gone, then fails:
    except ChildProcessError:
        ctx.note("waitpid(-1, 0) failed with ECHILD: with SIGCHLD ignored no status is kept")
    ctx.hold()


STRATEGY = Strategy(
    name="ignore",
    title="SIGCHLD = SIG_IGN: the kernel reaps",
    kind="remedy",
    entry=f"{__name__}:lab",
    model=lambda p, method: 0,
    model_text="expected = 0: no child ever becomes a zombie.",
    why=(
        "POSIX.1-2001: when a process sets SIGCHLD's action to SIG_IGN, its children do "
        "not become zombies when they exit; the kernel discards them at once. The price: "
        "no exit status can be collected. wait() blocks until every child is gone and "
        "then fails with ECHILD."
    ),
    fix=(
        "Use it when statuses do not matter. Beware: the setting is inherited across "
        "fork and exec, and a program (or a library such as subprocess) that later waits "
        "for its children gets ECHILD."
    ),
    source=(lab, fork_children, child),
    order=130,
)
