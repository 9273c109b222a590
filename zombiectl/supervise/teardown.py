"""Kill-and-collect: end every member of the tree, and only members, without racing fork.

Used by zombiectl at the end of a check or a demo and by the guard after zombiectl died.
Each round freezes the live members with SIGSTOP, parents first (a stopped parent forks
no more), reads the tree again (forks that were in flight), SIGKILLs every member, and
collects what is zombiectl's to collect. Rounds repeat until no member is left alive or
the deadline passes; a member still there then is named (uninterruptible sleep, state
D, is the usual reason: SIGKILL waits until its I/O returns).

Signals go through `Pinned` (pid and start time); a process group is never signalled, so
a stranger in a group a member joined is never touched.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from zombiectl.proc.identity import read_identity
from zombiectl.proc.pidfd import Pinned
from zombiectl.supervise.observer import Observer
from zombiectl.supervise.tree import Member

ROUND_PAUSE = 0.005  # seconds between two rounds, for SIGKILLed processes to exit


@dataclass(frozen=True)
class Stuck:
    """A member still alive after the teardown's deadline."""

    pid: int
    name: str
    state: str  # "D": uninterruptible sleep

    def describe(self) -> str:
        why = " (uninterruptible sleep, state D)" if self.state == "D" else f" (state {self.state})"
        return f"pid {self.pid} {self.name}{why}"


def signal_members(members: Iterable[Member], sig: int) -> int:
    """Send sig to each member that is still the process it was; how many got it."""
    sent = 0
    for m in members:
        if m.starttime is None:
            continue  # never known by its start time: never signalled
        p = Pinned.open(m.pid, m.starttime)
        if p is None:
            continue
        try:
            sent += p.signal(sig)
        finally:
            p.close()
    return sent


def end_members(
    observer: Observer,
    collect: Callable[[], None],
    deadline: float,
    which: Callable[[Member], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Stuck]:
    """Freeze and SIGKILL the live members `which` selects (default: all) until none is
    left or the deadline."""
    tree = observer.tree
    tree.begin_ending(which)
    if which is None:
        which = _every
    while True:
        observer.step(force_sample=True)
        collect()
        live = [m for m in tree.live() if which(m)]
        if not live:
            return []
        if not tree.me_alive and not stuck(live):
            # The guard, zombiectl gone: nothing left that a signal could end. The rest
            # are gone, zombies of others, or pids that name other processes now; without
            # zombiectl's descendants to sample, it would wait out its deadline for them.
            return []
        signal_members(live, signal.SIGSTOP)  # tree.live() is parents first
        observer.step(force_sample=True)  # forks made before the stop landed
        signal_members([m for m in tree.live() if which(m)], signal.SIGKILL)
        collect()
        if clock() >= deadline:
            observer.step(force_sample=True)
            collect()
            return stuck([m for m in tree.live() if which(m)])
        time.sleep(ROUND_PAUSE)


def _every(m: Member) -> bool:
    return True


def stuck(members: Iterable[Member]) -> list[Stuck]:
    out = []
    for m in members:
        ident = read_identity(m.pid)
        if ident is None or ident.is_zombie:
            continue
        if m.starttime is not None and ident.starttime != m.starttime:
            continue
        out.append(Stuck(m.pid, ident.name, ident.state))
    return out
