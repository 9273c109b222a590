"""`demo mp-single`: one Process, then the parent sleeps (S3)."""

from __future__ import annotations

from types import SimpleNamespace

from zombiectl.demo.labproc import LabContext
from zombiectl.demo.strategies._mp import context, expected_mp, reason_mp, wait_exited, work
from zombiectl.demo.strategies.registry import Strategy


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    mp = context(p)
    proc = mp.Process(target=work, args=(p.lifetime,))
    proc.start()
    ctx.started(proc.pid)
    ctx.done()
    wait_exited(proc)  # the child is done, and nothing will ever poll it
    ctx.hold()  # the post's time.sleep(100): the zombie stays


STRATEGY = Strategy(
    name="mp-single",
    title="one multiprocessing.Process, then the parent sleeps",
    experiment="S3",
    entry=f"{__name__}:lab",
    uses=frozenset({"lifetime", "start_method"}),
    defaults={"count": 1},
    model=lambda p, method: expected_mp(p, method, 1),
    model_text="expected = 1 with fork or spawn, 0 with forkserver.",
    why=(
        "multiprocessing reaps a finished child only when something polls it: a later "
        "start(), active_children(), join(), is_alive(), reading exitcode, or the "
        "interpreter's normal exit "
        "(multiprocessing.util._exit_function joins every child). A parent that starts "
        "one Process and then sleeps does none of these, so the exited child stays a "
        "zombie for as long as the parent sleeps. This is why the post's second Python "
        "program kept its zombie while the loop did not."
    ),
    fix="join() the Process (or call multiprocessing.active_children()) once it is done.",
    source=(lab, work),
    cpython=("multiprocessing.process.active_children",),
    reason=reason_mp("nothing polls the finished child: no start(), join() or active_children()"),
    order=40,
)
