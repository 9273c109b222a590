"""`demo subprocess`: abandoned subprocess.Popen objects, reaped only by the next Popen()."""

from __future__ import annotations

import os
import subprocess
import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext, wait_exited_unreaped
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    last = 0
    for i in range(p.count):
        if i:
            time.sleep(p.interval)
            wait_exited_unreaped(last)  # the abandoned child has exited by the next Popen()
        r, w = os.pipe()
        child = subprocess.Popen(["cat"], stdin=r, stdout=subprocess.DEVNULL)  # runs until EOF
        os.close(r)
        last = child.pid
        ctx.started(child.pid)
        del child  # abandoned while running: Popen.__del__ parks it on subprocess._active
        os.close(w)  # now let it end (cat sees end-of-file)
    ctx.done()
    wait_exited_unreaped(last)
    ctx.hold()  # no Popen() follows: the last one stays a zombie


STRATEGY = Strategy(
    name="subprocess",
    title="abandoned subprocess.Popen objects (never wait())",
    entry=f"{__name__}:lab",
    model=lambda p, method: 1,
    model_text="expected = 1: each Popen() reaps the earlier abandoned child; the last stays.",
    why=(
        "When a Popen object is garbage-collected while its child is still running, "
        "Popen.__del__ appends it to subprocess._active. Every new Popen() first calls "
        "subprocess._cleanup(), which polls those (waitpid WNOHANG) and reaps the ones that "
        "have exited. So abandoned children are reaped only when the program starts "
        "another one: the last abandoned child stays a zombie. (A child that has already "
        "exited when its Popen is collected is reaped right there, by __del__.)"
    ),
    fix="wait() or communicate() each Popen, or use subprocess.run(), or a with-block.",
    source=(lab, wait_exited_unreaped),
    cpython=("subprocess._cleanup", "subprocess.Popen.__del__"),
    order=60,
)
