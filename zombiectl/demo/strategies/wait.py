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
    model_text=(
        "expected = 0 at the end: every child is collected, but only once the fork loop "
        "is over. The parent calls waitpid() after its last fork, so the children that "
        "exit during the loop pile up as zombies until then (the live count climbs, "
        "then falls to 0)."
    ),
    reason=lambda p, method: (
        "waitpid() runs only after the whole fork loop: zombies pile up until the loop "
        "ends, then every child is collected"
    ),
    why=(
        "waitpid(pid, 0) blocks until that child has exited and then collects its exit "
        "status: the kernel frees the zombie's entry at that moment. This parent forks "
        "all its children first and waits only after its loop, so each child that exits "
        "before the loop ends is a zombie until then: with --count 5 and --lifetime "
        "shorter than the time between forks, the live view climbs to 4 zombies, and "
        "they all go once the waitpid() loop runs."
    ),
    fix=(
        "This is the fix, when the parent can afford to block. A parent that must keep "
        "working reaps from a SIGCHLD handler (demo sigchld) or polls with os.WNOHANG."
    ),
    source=(lab, fork_children, child),
    order=110,
)
