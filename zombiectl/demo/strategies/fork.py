"""`demo fork`: the post's C loop (S1) in Python: fork, never wait."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext, die_with_parent, wait_exited_unreaped
from zombiectl.demo.strategies.registry import Strategy


def child(parent: int, lifetime: float) -> None:
    try:
        die_with_parent(parent)
        time.sleep(lifetime)  # the post's child: print, sleep(1), exit
    finally:
        os._exit(0)  # never return into the parent's code


def fork_children(ctx: LabContext, p: SimpleNamespace) -> list[int]:
    """The post's loop: fork p.count children, p.interval apart; return their pids."""
    me = os.getpid()
    pids = []
    for i in range(p.count):
        if i:
            time.sleep(p.interval)  # the post's sleep(3)
        pid = os.fork()
        if pid == 0:
            child(me, p.lifetime)
        pids.append(pid)
        ctx.started(pid)
    ctx.done()
    return pids


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    pids = fork_children(ctx, p)  # ...and never wait() for them
    for pid in pids:  # observe each exit without reaping (WNOWAIT), so the count is final
        wait_exited_unreaped(pid)
    ctx.hold()


STRATEGY = Strategy(
    name="fork",
    title="os.fork() in a loop, the parent never waits",
    experiment="S1",
    entry=f"{__name__}:lab",
    model=lambda p, method: p.count,
    model_text="expected = count: every child that exits stays a zombie.",
    why=(
        "A child that exits keeps its process-table entry (pid, exit status, CPU times) "
        "until its parent collects the status with wait()/waitpid(). This parent never "
        "does, so every child becomes a zombie and stays one until the parent itself "
        "exits; then init (or the nearest subreaper) adopts and reaps them."
    ),
    fix=(
        "Reap every child: os.waitpid(pid, 0) when it is done (demo wait), a SIGCHLD "
        "handler that loops os.waitpid(-1, os.WNOHANG) (demo sigchld), or SIGCHLD set to "
        "SIG_IGN when exit statuses do not matter (demo ignore)."
    ),
    source=(lab, fork_children, child, wait_exited_unreaped),
    reason=lambda p, method: "nobody calls wait(): every child that exits stays a zombie",
    order=10,
)
