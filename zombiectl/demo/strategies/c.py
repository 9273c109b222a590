"""`demo c`: the post's C program (S1): fork() in a loop, never wait()."""

from __future__ import annotations

import os
from types import SimpleNamespace

from zombiectl.demo.labproc import EVENT_FD, LabContext, exec_checked
from zombiectl.demo.strategies.registry import Strategy


def prepare(p: SimpleNamespace) -> SimpleNamespace:
    """In zombiectl: build (or find) the checked binary; the lab gets its descriptor."""
    from zombiectl.demo.cbuild import build

    return SimpleNamespace(**vars(p), exec_fd=build("fork_no_wait").fd)


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    # The C program becomes the lab parent itself: exec keeps our pid, our process group
    # and the parent-death signal, and it reports its children on the same descriptor.
    os.set_inheritable(EVENT_FD, True)
    env = dict(os.environ, ZOMBIECTL_REPORT_FD=str(EVENT_FD))
    argv = ["fork_no_wait", str(p.count), repr(float(p.interval)), repr(float(p.lifetime))]
    exec_checked(argv, env)


def c_source() -> list[tuple[str, str]]:
    from zombiectl.demo.cbuild import source_path

    return [("c_demos/fork_no_wait.c", source_path("fork_no_wait").read_text())]


STRATEGY = Strategy(
    name="c",
    title="the post's C program: fork() in a loop, never wait()",
    experiment="S1",
    entry=f"{__name__}:lab",
    prepare=prepare,
    model=lambda p, method: p.count,
    model_text="expected = count: every child that exits stays a zombie.",
    why=(
        "The same as demo fork, in the post's own language: each child calls exit() and "
        "becomes a zombie, because its parent never calls wait(). In the post this made "
        "'a big pile of zombies', one more per fork, unlike the Python multiprocessing "
        "loop, which reaped behind the scenes."
    ),
    fix=(
        "wait()/waitpid() for each child, a SIGCHLD handler looping "
        "waitpid(-1, &status, WNOHANG), or signal(SIGCHLD, SIG_IGN)."
    ),
    source=(lab,),
    source_files=c_source,
    reason=lambda p, method: "nobody calls wait(): every child that exits stays a zombie",
    order=20,
)
