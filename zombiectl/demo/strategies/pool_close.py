"""`demo pool-close`: multiprocessing.Pool.close() without join() leaves its workers as zombies."""

from __future__ import annotations

from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext, die_with_parent
from zombiectl.demo.strategies._mp import context, expected_mp, reason_mp, wait_exited
from zombiectl.demo.strategies.registry import Strategy


def square(x: int) -> int:
    return x * x


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    mp = context(p)
    pool = mp.Pool(processes=p.count, initializer=die_with_parent)
    workers = list(pool._pool)  # the Process objects of the workers (to watch them)
    for proc in workers:
        ctx.started(proc.pid)
    pool.map(square, range(p.count * 4))
    ctx.done()
    pool.close()  # no more tasks: each worker exits after its last one... and no join()
    for proc in workers:
        wait_exited(proc)
    ctx.hold()  # the pool object stays alive, so its finalizer never joins them either


STRATEGY = Strategy(
    name="pool-close",
    title="multiprocessing.Pool.close() without join()",
    entry=f"{__name__}:lab",
    uses=frozenset({"count", "start_method"}),
    model=lambda p, method: expected_mp(p, method, p.count),
    model_text="expected = count (the pool size) with fork or spawn, 0 with forkserver.",
    why=(
        "close() tells the pool that no more tasks will come. The pool's worker-handler "
        "thread, which reaps workers that exit while the pool runs, stops its loop, and "
        "only then sends each worker the sentinel that makes it exit. Nobody polls them "
        "after that: join() would, and so would terminate() or the pool's finalizer "
        "when the pool object is garbage-collected. Until then every worker is a zombie."
    ),
    fix="close() then join(); or use the pool as a context manager (with ... as pool:).",
    source=(lab,),
    cpython=("multiprocessing.pool.Pool.close", "multiprocessing.pool.Pool.join"),
    reason=reason_mp("close() without join(): the workers exit and nobody waits for them"),
    order=70,
)
