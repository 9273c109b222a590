"""Who started which process during a test session, and what each test or fixture left.

Every process in the session's tree gets an owner the first time it is seen: the test
running at the time, or the session-, package-, module- or class-scoped fixture whose
setup was running; a new process whose parent belongs to such a fixture belongs to that
fixture too (a server's workers are the server's). Processes there before the session
started belong to nobody and are never blamed or touched.

A test is checked after its teardown (so fixtures that clean up there are not blamed); a
fixture is checked after its finaliser. What its owner left is reported, then collected
(see `tree.collect`), so the next test starts clean and is not blamed for it.

Orphans: the session is a child subreaper, so an orphaned descendant comes to pytest, not
to init. A zombie child of pytest that was seen before under another parent, or that
pytest did not start itself (see `forks`), is such an orphan: it is reaped at the next
read and blamed on no one (init would have reaped it). A running process that became an
orphan belongs from then on to the test during which that happened, and is blamed on it
if still running when the test ends.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from zombiectl.testing import forks
from zombiectl.testing.tree import Key, Proc, collect, describe, read_tree

# What a test left (a process still running, or a zombie its owner may be about to reap)
# gets this long to go away on its own before it counts.
GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Owner:
    """A test (kind "test") or a fixture wider than one test (kind "fixture")."""

    kind: str
    name: str
    scope: str = "function"

    def label(self) -> str:
        if self.kind == "fixture":
            return f"{self.scope}-scoped fixture {self.name!r}"
        return self.name


NOBODY = Owner("preexisting", "")


@dataclass
class Leak:
    owner: Owner
    procs: list[Proc]
    lines: list[str] = field(default_factory=list)
    uncollected: list[Proc] = field(default_factory=list)

    def text(self, grace: float) -> str:
        n = len(self.procs)
        head = (
            f"{self.owner.label()} left {n} process{'es' if n != 1 else ''} behind "
            f"(checked after teardown, {grace:g} s grace for exiting processes):"
        )
        tail = ["  collected: running ones killed, zombies reaped"]
        if self.uncollected:
            pids = ", ".join(str(p.pid) for p in self.uncollected)
            tail = [f"  could not collect: {pids} (a zombie of a parent that is not pytest's)"]
        return "\n".join([head, *(f"  {line}" for line in self.lines), *tail])


class Ledger:
    """The owners of the session's processes, and the checks made on them."""

    def __init__(self, grace: float = GRACE_SECONDS, me: int | None = None) -> None:
        self.me = os.getpid() if me is None else me
        self.grace = grace
        self.owner_of: dict[Key, Owner] = {}
        self.parent_of: dict[Key, int] = {}
        self.exempt: set[Owner] = set()
        for proc in read_tree(self.me):
            self._note(proc, NOBODY)

    def _note(self, proc: Proc, owner: Owner) -> None:
        self.owner_of[proc.key] = owner
        self.parent_of[proc.key] = proc.ppid

    def claim(self, owner: Owner) -> list[Proc]:
        """Read the tree once; give new processes and fresh orphans an owner; reap
        orphaned zombies. Returns the tree as read."""
        # Forks recorded before the read: those absent from it have gone for good. (One
        # recorded only after the read may be a child the read came too early to see.)
        recorded = set(forks.forked())
        tree = read_tree(self.me)
        by_pid = {p.pid: p for p in tree}
        held: set[int] | None = None
        for proc in tree:
            known = self.owner_of.get(proc.key)
            if known is not None:
                if proc.ppid != self.parent_of[proc.key]:
                    self._adopted(proc, owner)
                continue
            if proc.is_zombie and proc.ppid == self.me and proc.pid not in forks.forked():
                if held is None:
                    held = forks.held_by_python()
                if proc.pid not in held:
                    self._reap_orphan(proc)
                    continue
            self._note(proc, self._inherited(proc, by_pid, owner))
        forks.forget(recorded.difference(by_pid))
        self._forget_gone(tree)
        return tree

    def _reap_orphan(self, proc: Proc) -> None:
        """A zombie child pytest never started: an orphan that exited after adoption."""
        try:
            os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _inherited(self, proc: Proc, by_pid: dict[int, Proc], owner: Owner) -> Owner:
        parent = by_pid.get(proc.ppid)
        if parent is not None and not parent.is_zombie:
            theirs = self.owner_of.get(parent.key)
            if theirs is not None and theirs.kind == "fixture":
                return theirs
        return owner

    def _adopted(self, proc: Proc, owner: Owner) -> None:
        """proc was orphaned and adopted by the session since the last read."""
        self.parent_of[proc.key] = proc.ppid
        if proc.is_zombie:
            self._reap_orphan(proc)
        elif self.owner_of[proc.key] is not NOBODY:
            self.owner_of[proc.key] = owner

    def _forget_gone(self, tree: list[Proc]) -> None:
        if len(self.owner_of) > len(tree):
            alive = {p.key for p in tree}
            for key in [k for k in self.owner_of if k not in alive]:
                del self.owner_of[key]
                del self.parent_of[key]

    def check(self, owner: Owner, current: Owner) -> Leak | None:
        """What owner left behind, collected; None when it left nothing.

        `current` owns whatever is new at this moment and not inherited (the test being
        torn down)."""
        mine = self._owned(self.claim(current), owner)
        deadline = time.monotonic() + self.grace
        # A zombie counts only after the grace too: its owner (a thread in Popen.wait(),
        # a SIGCHLD handler) may be about to reap it.
        while mine and time.monotonic() < deadline:
            time.sleep(0.01)
            mine = self._owned(self.claim(current), owner)
        if not mine:
            return None
        names = {p.pid: p.name for p in self.claim(current)}
        names.setdefault(self.me, "pytest")
        lines = [describe(p, names.get(p.ppid, "?")) for p in mine]
        left = collect({p.key for p in mine}, self.me)
        self.claim(current)
        if owner in self.exempt:
            return None
        return Leak(owner, mine, lines, [p for p in left if p.key in {m.key for m in mine}])

    def _owned(self, tree: list[Proc], owner: Owner) -> list[Proc]:
        return [p for p in tree if self.owner_of.get(p.key) == owner]

    def leftovers(self) -> list[Proc]:
        """Every process the session started that still exists."""
        return [p for p in read_tree(self.me) if self.owner_of.get(p.key) is not NOBODY]
