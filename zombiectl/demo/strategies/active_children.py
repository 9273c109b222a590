"""`demo active-children`: multiprocessing.active_children() reaps finished workers."""

from __future__ import annotations

import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies._mp import MP_USES, context, wait_exited, work
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    mp = context(p)
    procs = []
    for i in range(p.count):
        if i:
            time.sleep(p.interval)
        proc = mp.Process(target=work, args=(p.lifetime,))
        proc.start()
        ctx.started(proc.pid)
        procs.append(proc)
    ctx.done()
    for proc in procs:
        wait_exited(proc)
    mp.active_children()  # polls every tracked child: each one that exited is reaped
    ctx.hold()


STRATEGY = Strategy(
    name="active-children",
    title="multiprocessing.active_children() after the starts",
    kind="remedy",
    entry=f"{__name__}:lab",
    uses=MP_USES,
    model=lambda p, method: 0,
    model_text="expected = 0.",
    why=(
        "active_children() calls the same _cleanup() as start(): poll() on every tracked "
        "child, which for fork and spawn is waitpid(pid, WNOHANG). Called once the "
        "children have finished, it reaps all of them, and returns the ones still alive."
    ),
    fix=(
        "Call it periodically in a long-running parent that starts Processes and never "
        "joins them; or join() each one."
    ),
    source=(lab,),
    cpython=("multiprocessing.process.active_children",),
    reason=lambda p, method: "active_children() polled every finished child and reaped it",
    order=150,
)
