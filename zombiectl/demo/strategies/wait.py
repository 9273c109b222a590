"""`demo wait`: the remedy everyone learns first: collect each child with waitpid()."""

from __future__ import annotations

import os
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies.fork import child, fork_children
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    pids = fork_children(ctx, p)
    for pid in pids:
        os.waitpid(pid, 0)  # blocks until that child exits, then collects its status
    ctx.hold()


STRATEGY = Strategy(
    name="wait",
    title="fork, then waitpid() each child",
    kind="remedy",
    entry=f"{__name__}:lab",
    model=lambda p, method: 0,
    model_text="expected = 0: every child is collected.",
    why=(
        "waitpid(pid, 0) blocks until that child has exited and then collects its exit "
        "status: the kernel frees the zombie's entry at that moment. A child that exits "
        "before the parent reaches its waitpid() is a zombie for that short while (the "
        "live view may show it), never after."
    ),
    fix=(
        "This is the fix, when the parent can afford to block. A parent that must keep "
        "working reaps from a SIGCHLD handler (demo sigchld) or polls with os.WNOHANG."
    ),
    source=(lab, fork_children, child),
    order=110,
)
