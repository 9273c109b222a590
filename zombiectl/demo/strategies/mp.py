"""`demo mp`: the post's Downloader loop (S2): start a Process every interval, never join."""

from __future__ import annotations

import time
from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext, wait_exited_unreaped
from zombiectl.demo.strategies._mp import (
    MP_USES,
    context,
    expected_mp,
    reason_mp,
    wait_exited,
    work,
)
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    mp = context(p)
    procs: list = []
    for i in range(p.count):
        if i:
            time.sleep(p.interval)  # the post's time.sleep(1)
            wait_exited(procs[-1])  # ...and what that sleep achieved: the last child has exited
        proc = mp.Process(target=work, args=(p.lifetime,))
        proc.start()  # start() first calls _cleanup(): it polls, and so reaps, finished siblings
        ctx.started(proc.pid)
        procs.append(proc)
    ctx.done()
    wait_exited(procs[-1])
    ctx.hold()  # no start() comes any more: the last child stays a zombie


STRATEGY = Strategy(
    name="mp",
    title="multiprocessing.Process(...).start() in a loop, never join()",
    experiment="S2",
    entry=f"{__name__}:lab",
    uses=MP_USES,
    model=lambda p, method: expected_mp(p, method, 1),
    model_text=(
        "expected = 1 with fork or spawn (every earlier child was reaped by a later "
        "start()), 0 with forkserver."
    ),
    why=(
        "Process.start() begins with multiprocessing.process._cleanup(), which calls "
        "poll() on every child it still tracks; for fork and spawn, poll() is "
        "os.waitpid(pid, os.WNOHANG), which reaps a child that has exited. A child that "
        "finished before the next start() is reaped by that start(), so at most one "
        "zombie exists at a time (the post's 'only one zombie'), and the last child stays "
        "a zombie because no start() follows it. With forkserver the workers are the fork "
        "server's children, and the server reaps each one as soon as it exits."
    ),
    fix=(
        "join() each Process when you are done with it, or call "
        "multiprocessing.active_children() from time to time (demo active-children); "
        "a normal interpreter exit joins them too (multiprocessing.util._exit_function)."
    ),
    source=(lab, work, wait_exited, wait_exited_unreaped),
    cpython=(
        "multiprocessing.process.BaseProcess.start",
        "multiprocessing.process._cleanup",
        "multiprocessing.popen_fork.Popen.poll",
    ),
    reason=reason_mp(
        "each start() reaped the children that had exited; nothing polls after the last one"
    ),
    order=30,
)
