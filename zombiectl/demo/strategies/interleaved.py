"""`demo interleaved`: starts GAP seconds apart (S4), or back to back with --gap 0 (S5)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext, wait_exited_unreaped
from zombiectl.demo.strategies._mp import (
    FORKSERVER_REASON,
    context,
    expected_mp,
    wait_exited,
    work,
    work_until,
)
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    mp = context(p)
    release = mp.Event() if p.gap == 0 else None
    procs: list = []
    for i in range(p.count):
        if i and p.gap > 0:
            time.sleep(p.gap)  # the post's sleep(3) between starts
            wait_exited(procs[-1])  # what the sleep achieved: the earlier child has exited
        if release is None:
            proc = mp.Process(target=work, args=(p.lifetime,))
        else:  # no gap: the earlier children are still running at each start()
            proc = mp.Process(target=work_until, args=(release,))
        proc.start()  # _cleanup() polls the earlier children: it reaps only those that exited
        ctx.started(proc.pid)
        procs.append(proc)
    ctx.done()
    if release is not None:
        release.set()  # after the last start(): now they may all finish
    for proc in procs if release is not None else procs[-1:]:
        wait_exited(proc)
    ctx.hold()


def _expected(p: SimpleNamespace, method: str | None) -> int:
    return expected_mp(p, method, p.count if p.gap == 0 else 1)


STRATEGY = Strategy(
    name="interleaved",
    title="a few starts with a gap between them; --gap 0: back to back",
    experiment="S4/S5",
    entry=f"{__name__}:lab",
    uses=frozenset({"count", "gap", "lifetime", "start_method"}),
    defaults={"count": 3},
    model=_expected,
    model_text=(
        "expected = 1 when gap > 0 (each earlier child had exited by the next start()), "
        "count when gap = 0 (none had), 0 with forkserver."
    ),
    why=(
        "The post's open question: with sleep(3) between three starts, only the last "
        "child stays a zombie; without the sleeps, all three do. It is timing, not sleep. "
        "start() reaps only children that have already exited when it runs: _cleanup() "
        "calls poll(), which is os.waitpid(pid, os.WNOHANG), and WNOHANG returns at once "
        "for a child that is still running. With a gap, each earlier child had finished "
        "by the next start() and was reaped there. Back to back, every earlier child was "
        "still running at each start(), so nothing was reaped, and after the last start() "
        "nothing polls again: all of them stay zombies. (This demo makes the timing "
        "certain instead of likely: with a gap it waits until the earlier child has "
        "exited, without reaping it; with --gap 0 the children block until the last "
        "start() is done.)"
    ),
    fix="join() the children, or call multiprocessing.active_children() after the starts.",
    source=(lab, work, work_until, wait_exited_unreaped),
    cpython=("multiprocessing.process._cleanup", "multiprocessing.popen_fork.Popen.poll"),
    reason=lambda p, method: (
        FORKSERVER_REASON
        if method == "forkserver"
        else "no gap: at each start() the earlier children were still running, so none was reaped"
        if p.gap == 0
        else "with a gap, each earlier child had exited by the next start(), which reaped it"
    ),
    order=50,
)
