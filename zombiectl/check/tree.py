"""The tree under check: every process seen in it, when it became a zombie, who collected it.

A pure model: it is told what happened (a fork, an exit, a sample of the tree, a pid that
is gone) with a timestamp, and never reads the clock or /proc itself, so its logic is
tested with made-up events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zombiectl.proc.table import ProcInfo

PARENT, ZOMBIECTL = "parent", "zombiectl"
# A zombie is polled again after this fraction of its age, within these bounds: a
# zombie reaped at once is timed to a few milliseconds, one that stays costs one read
# a second.
POLL_FRACTION = 0.1
POLL_MIN = 0.002
POLL_MAX = 1.0


@dataclass
class Member:
    pid: int
    ppid: int
    born: float
    exited: float | None = None  # when it became a zombie (exit event or first Z sample)
    gone: float | None = None
    collector: str | None = None  # PARENT or ZOMBIECTL, once gone after being a zombie
    before: bool = False  # already there when the check started (--pid mode)
    next_poll: float = 0.0

    @property
    def is_zombie(self) -> bool:
        return self.exited is not None and self.gone is None


class Tree:
    """Processes of the tree by pid, with the counts the report needs."""

    def __init__(self, root: int, me: int, now: float) -> None:
        self.root = root
        self.me = me
        self.members: dict[int, Member] = {root: Member(root, 0, now, before=True)}
        self.max_zombies = 0
        self.adopted: set[int] = set()
        self.root_status: int | None = None  # the root's wait status, from its exit event
        self._zombies: set[int] = set()  # members that are zombies now (the root excepted)

    # ------------------------------------------------------------- what happened

    def fork(self, pid: int, ppid: int, now: float, before: bool = False) -> bool:
        """A process forked by a live member joins the tree; True if it did."""
        parent = self.members.get(ppid)
        known = self.members.get(pid)
        if parent is None or parent.gone is not None or (known and known.gone is None):
            return False
        self.members[pid] = Member(pid, ppid, now, before=before)
        return True

    def exit(self, pid: int, now: float, ppid: int = 0) -> None:
        m = self.members.get(pid)
        if m is None or m.gone is not None or m.exited is not None:
            return
        m.exited = now
        m.next_poll = now + POLL_MIN
        if ppid:
            m.ppid = ppid
        self._became_zombie(m)

    def gone(self, pid: int, now: float, by_me: bool) -> None:
        m = self.members.get(pid)
        if m is None or m.gone is not None:
            return
        if by_me and pid != self.root:
            self.adopted.add(pid)
        # A process reaped between two samples was never seen as a zombie: it keeps
        # exited=None and has no lifetime to report.
        m.gone = now
        self._zombies.discard(pid)
        m.collector = ZOMBIECTL if by_me else PARENT

    def adopt(self, pid: int) -> None:
        """pid is now zombiectl's child: an orphan of the tree that zombiectl adopted."""
        m = self.members.get(pid)
        if m is not None and pid != self.root:
            self.adopted.add(pid)
            if not m.is_zombie:  # a zombie keeps the parent it died under (the leaker)
                m.ppid = self.me

    def seen(
        self, procs: Iterable[ProcInfo], now: float, complete: bool, before: bool = False
    ) -> None:
        """A sample of the tree. With `complete`, a live member missing from it has gone."""
        present = set()
        for p in procs:
            present.add(p.pid)
            m = self.members.get(p.pid)
            if m is None or m.gone is not None:
                m = self.members[p.pid] = Member(p.pid, p.ppid, now, before=before)
            if p.is_zombie and m.exited is None:
                m.exited = now
                m.next_poll = now + POLL_MIN
                self._became_zombie(m)
            if not m.is_zombie:  # a zombie keeps the parent it died under
                m.ppid = p.ppid
        if complete:
            for m in self.members.values():
                if m.gone is None and m.pid not in present and m.pid != self.root:
                    self.gone(m.pid, now, by_me=False)

    def _became_zombie(self, m: Member) -> None:
        if m.pid != self.root:
            self._zombies.add(m.pid)
            self.max_zombies = max(self.max_zombies, len(self._zombies))

    # ------------------------------------------------------------- what is known

    def live_pids(self) -> set[int]:
        return {m.pid for m in self.members.values() if m.gone is None and m.exited is None}

    def zombies(self) -> list[Member]:
        return [self.members[pid] for pid in self._zombies]

    def due(self, now: float) -> list[Member]:
        """Zombies whose next poll is due."""
        return [m for m in self.zombies() if m.next_poll <= now]

    def polled(self, m: Member, now: float) -> None:
        assert m.exited is not None
        age = now - m.exited
        m.next_poll = now + min(POLL_MAX, max(POLL_MIN, age * POLL_FRACTION))

    def children_started(self) -> int:
        return sum(1 for m in self.members.values() if not m.before)

    def lifetimes(self) -> list[float]:
        """Seconds each collected zombie spent as one (those seen as zombies only)."""
        return [
            m.gone - m.exited
            for m in self.members.values()
            if m.gone is not None and m.exited is not None and m.pid != self.root
        ]
