"""`demo double-fork`: fork twice so that the worker is orphaned and init reaps it."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    r, w = os.pipe()  # each grandchild keeps w open: EOF on r means all have exited
    for i in range(p.count):
        if i:
            time.sleep(p.interval)
        pid = os.fork()
        if pid == 0:  # the child forks the real worker, then exits at once
            try:
                if os.fork() == 0:  # the grandchild: orphaned within moments
                    os.close(r)
                    time.sleep(p.lifetime)  # its work; init (or a subreaper) will reap it
            finally:
                os._exit(0)
        os.waitpid(pid, 0)  # the child exits at once, so this wait is short
        ctx.started(pid)
    ctx.done()
    os.close(w)
    os.read(r, 1)  # returns b"" once every grandchild has exited
    ctx.hold()


STRATEGY = Strategy(
    name="double-fork",
    title="fork twice: the worker is adopted and reaped by init",
    kind="remedy",
    entry=f"{__name__}:lab",
    model=lambda p, method: 0,
    model_text="expected = 0: the short-lived children are waited for; the workers are not ours.",
    why=(
        "The parent forks a child that forks the real worker and exits at once; the "
        "parent's waitpid() on that child returns almost immediately. The worker is now "
        "an orphan: the kernel re-parents it to the nearest child subreaper, or to PID 1, "
        "which reaps it when it exits. (Here zombiectl is that subreaper.) The parent "
        "never has a long-lived child to forget."
    ),
    fix=(
        "A way to start daemons and fire-and-forget workers. It relies on init reaping: "
        "in a container whose PID 1 does not reap, run an init (zombiectl run --, tini)."
    ),
    source=(lab,),
    order=140,
)
