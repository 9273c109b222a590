"""The supervised tree: every member by pid and start time, when it exited, who collected it.

A pure model: it is told what happened (a fork, an exit, a sample of the tree, a pid
that is gone, a look at an exited process) with a timestamp, and never reads the clock or
/proc itself, so its logic is tested with made-up events.

Who is a member: a root (CMD, a demo's lab parent), every process whose fork names a
live member or zombiectl itself as parent (``clone(CLONE_PARENT)`` makes zombiectl the
parent), and every orphan that zombiectl adopts. A zombie is a member *seen* in state Z:
an exit alone is not one (a child of a parent that ignores SIGCHLD is gone at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from zombiectl.proc.age import zombie_age
from zombiectl.proc.table import ProcInfo

PARENT, ZOMBIECTL = "parent", "zombiectl"
# An exited member is looked at every POLL_FAST seconds for its first POLL_FAST_FOR
# seconds, then after POLL_FRACTION of its age within [POLL_FAST, POLL_MAX]: a zombie
# reaped at once is timed to a millisecond, one that stays costs one read a second.
POLL_FAST = 0.001
POLL_FAST_FOR = 0.05
POLL_FRACTION = 0.1
POLL_MAX = 1.0


@dataclass
class Member:
    pid: int
    ppid: int
    born: float
    starttime: int | None = None  # clock ticks after boot; None when never read
    exited: float | None = None  # the exit event (or the first sample that showed Z)
    last_z: float | None = None  # the last time it was seen in state Z
    gone: float | None = None
    collector: str | None = None  # PARENT or ZOMBIECTL, once gone after being a zombie
    before: bool = False  # already there when the check started (--pid mode)
    origin: int = 0  # the root it descends from (0: unknown, e.g. a CLONE_PARENT child)
    parent_exited: float | None = None  # when the parent it died under exited
    parent_ended: bool = False  # ... and whether the check ended that parent
    ended_by_check: bool = False  # alive when the check began to end the tree
    next_poll: float = 0.0

    @property
    def is_zombie(self) -> bool:
        """Seen in state Z and not gone since."""
        return self.last_z is not None and self.gone is None

    @property
    def alive(self) -> bool:
        return self.exited is None and self.gone is None

    def age_under_parent(self, now: float) -> float | None:
        """How long it has been a zombie while the parent it died under lived: from its
        exit to the last look that saw it in state Z (now, while it still is one)."""
        if self.exited is None or self.last_z is None:
            return None
        end = self.last_z if self.gone is not None else now
        if self.parent_exited is not None:
            end = min(end, self.parent_exited)
        return zombie_age(end, self.exited)[0]


@dataclass
class Totals:
    """What the members that are gone contributed to the counts."""

    children: int = 0
    ended: int = 0
    adopted: int = 0
    by_parent: int = 0
    by_me: int = 0
    not_reaped: int = 0
    slowest: float | None = None
    oldest: float | None = None
    lifetimes: list[float] = field(default_factory=list)


class Tree:
    """Processes of the tree by pid, with the counts the report needs.

    `members` holds the processes alive or unreaped (and the roots); one that is gone is
    folded into `totals` and forgotten.
    """

    def __init__(self, root: int, me: int, now: float, starttime: int | None = None) -> None:
        self.root = root  # the main root (CMD, --pid P); 0 when there are several
        self.me = me  # zombiectl, when the tree hangs under it; 0 with --pid
        # False once zombiectl has died (the guard's view): its pid may name another
        # process later, whose children are not members.
        self.me_alive = True
        self.members: dict[int, Member] = {}
        self.max_zombies = 0
        self.adopted: set[int] = set()
        self.root_status: int | None = None  # the root's wait status, from its exit event
        self.ignore: set[int] = set()  # zombiectl's own helpers (the guard)
        self.ending = False  # the check is ending the tree: what dies now is its doing
        self._zombies: set[int] = set()  # members seen as zombies and not gone (roots excepted)
        self._exited: set[int] = set()  # members that exited and are not gone yet
        self._exited_under: dict[int, set[int]] = {}  # the same, by the parent they died under
        self.roots: set[int] = set()
        self.totals = Totals()
        if root:
            self.add_root(root, now, starttime, before=True)

    # ------------------------------------------------------------- what happened

    def add_root(
        self, pid: int, now: float, starttime: int | None = None, before: bool = False
    ) -> None:
        self.roots.add(pid)
        m = self.members.get(pid)
        if m is None or m.gone is not None:
            self.members[pid] = Member(pid, self.me, now, starttime, before=before, origin=pid)
        else:
            m.origin = pid
            m.starttime = m.starttime if starttime is None else starttime

    def joins(self, ppid: int) -> bool:
        """Whether a process forked by ppid is a member."""
        parent = self.members.get(ppid)
        if parent is not None and parent.gone is None:
            return True
        return self.me_alive and bool(self.me) and ppid == self.me

    def fork(
        self, pid: int, ppid: int, now: float, starttime: int | None = None, before: bool = False
    ) -> bool:
        """A process forked by a live member (or by zombiectl) joins the tree; True if it did."""
        known = self.members.get(pid)
        if pid in self.ignore or not self.joins(ppid) or (known and known.gone is None):
            return False
        parent = self.members.get(ppid)
        origin = parent.origin if parent is not None and ppid != self.me else 0
        self.members[pid] = Member(pid, ppid, now, starttime, before=before, origin=origin)
        return True

    def exit(self, pid: int, now: float, ppid: int = 0) -> None:
        m = self.members.get(pid)
        if m is None or m.gone is not None or m.exited is not None:
            return
        m.exited = now
        m.next_poll = now + POLL_FAST
        m.ended_by_check = m.ended_by_check or self.ending
        if ppid:
            m.ppid = ppid
        self._exited.add(pid)
        self._exited_under.setdefault(m.ppid, set()).add(pid)
        for zpid in self._exited_under.get(pid, ()):
            z = self.members[zpid]
            if z.parent_exited is None:
                z.parent_exited = now
                z.parent_ended = m.ended_by_check

    def gone(self, pid: int, now: float, by_me: bool) -> None:
        m = self.members.get(pid)
        if m is None or m.gone is not None:
            return
        if by_me and pid not in self.roots and not self.ending:
            self.adopted.add(pid)
        if by_me and m.last_z is not None:
            m.last_z = now  # it was ours to reap: a zombie until this very moment
        if m.exited is None and not m.ended_by_check:
            m.ended_by_check = self.ending
        m.gone = now
        self._zombies.discard(pid)
        if pid in self._exited:
            self._exited.discard(pid)
            under = self._exited_under.get(m.ppid)
            if under is not None:
                under.discard(pid)
                if not under:
                    del self._exited_under[m.ppid]
        m.collector = ZOMBIECTL if by_me else PARENT
        if pid not in self.roots:
            self._fold(m)

    def _fold(self, m: Member) -> None:
        """Add a gone member to the totals and forget it: memory stays bounded by the
        processes alive or unreaped, however many a program forks."""
        t = self.totals
        t.children += not m.before
        t.ended += m.ended_by_check
        if m.pid in self.adopted:
            self.adopted.discard(m.pid)
            t.adopted += 1
        if m.exited is not None and not m.ended_by_check:
            if m.collector == ZOMBIECTL:
                t.by_me += 1
            else:
                t.by_parent += 1
        if self.program_zombie(m) and m.exited is not None and m.last_z is not None:
            life = zombie_age(m.last_z, m.exited)[0]
            t.lifetimes.append(life)
            if m.collector == PARENT:
                t.slowest = life if t.slowest is None else max(t.slowest, life)
            age = m.age_under_parent(m.last_z)
            if age is not None:
                t.oldest = age if t.oldest is None else max(t.oldest, age)
        t.not_reaped += self._left_by_running_parent(m)
        del self.members[m.pid]

    def adopt(self, pid: int) -> None:
        """pid is now zombiectl's child: an orphan of the tree that zombiectl adopted."""
        m = self.members.get(pid)
        if m is None or pid in self.roots:
            return
        if not self.ending and not m.ended_by_check:
            self.adopted.add(pid)
        if m.exited is None:  # a dead one keeps the parent it died under (the leaker)
            m.ppid = self.me

    def looked(self, m: Member, now: float, zombie: bool) -> None:
        """A look at an exited member: in state Z (zombie) or not (gone, by its parent)."""
        if not zombie:
            self.gone(m.pid, now, by_me=False)
            return
        self._seen_z(m, now)
        age = zombie_age(now, m.exited)[0] if m.exited is not None else 0.0
        if age < POLL_FAST_FOR:
            m.next_poll = now + POLL_FAST
        else:
            m.next_poll = now + min(POLL_MAX, max(POLL_FAST, age * POLL_FRACTION))

    def seen(
        self, procs: Iterable[ProcInfo], now: float, complete: bool, before: bool = False
    ) -> list[int]:
        """A sample of the tree. With `complete`, a live member missing from it has gone.

        Returns the pids that joined.
        """
        present = set()
        joined = []
        for p in procs:
            if p.pid in self.ignore:
                continue
            present.add(p.pid)
            m = self.members.get(p.pid)
            if m is None or m.gone is not None:
                parent = self.members.get(p.ppid)
                origin = parent.origin if parent is not None else 0
                m = self.members[p.pid] = Member(p.pid, p.ppid, now, before=before, origin=origin)
                joined.append(p.pid)
            if p.is_zombie:
                if m.exited is None:
                    self.exit(p.pid, now)
                self._seen_z(m, now)
            elif m.exited is None:  # a dead one keeps the parent it died under
                m.ppid = p.ppid
        if complete:
            for m in list(self.members.values()):
                if m.gone is None and m.pid not in present and m.pid not in self.roots:
                    self.gone(m.pid, now, by_me=False)
        return joined

    def note_starttime(self, pid: int, starttime: int) -> None:
        m = self.members.get(pid)
        if m is not None and m.starttime is None:
            m.starttime = starttime

    def forget(self, pid: int) -> None:
        """Drop an exited member entirely (the guard keeps only the living)."""
        m = self.members.get(pid)
        if m is not None and m.exited is not None:
            self.gone(pid, m.exited, by_me=False)  # folded into the totals, and forgotten

    def begin_ending(self, which: Callable[[Member], bool] | None = None) -> None:
        """From now on, what dies was ended by the check, never by the program.

        `which`: only these members are being ended (one demo lab among others).
        """
        if which is None:
            self.ending = True
        for m in self.members.values():
            if m.alive and (which is None or which(m)):
                m.ended_by_check = True

    def _seen_z(self, m: Member, now: float) -> None:
        m.last_z = now
        if m.pid not in self.roots and m.pid not in self._zombies and not m.ended_by_check:
            self._zombies.add(m.pid)
            self.max_zombies = max(self.max_zombies, len(self._zombies))

    # ------------------------------------------------------------- what is known

    def live(self) -> list[Member]:
        """Members not known to have exited, parents before children (by start time)."""
        out = [m for m in self.members.values() if m.alive]
        out.sort(key=lambda m: (m.starttime if m.starttime is not None else 1 << 62, m.pid))
        return out

    def live_pids(self) -> set[int]:
        return {m.pid for m in self.members.values() if m.alive}

    def zombies(self) -> list[Member]:
        return [self.members[pid] for pid in self._zombies]

    def exited_unseen(self) -> list[Member]:
        """Members that exited and are not gone: zombies and those not looked at yet."""
        return [self.members[pid] for pid in self._exited]

    def due(self, now: float) -> list[Member]:
        """Exited members whose next look is due."""
        return [self.members[pid] for pid in self._exited if self.members[pid].next_poll <= now]

    def next_due(self) -> float | None:
        if not self._exited:
            return None
        return min(self.members[pid].next_poll for pid in self._exited)

    def program_zombie(self, m: Member) -> bool:
        """Seen as a zombie of the program's own making (not a root, not the check's doing)."""
        return m.last_z is not None and m.pid not in self.roots and not m.ended_by_check

    def children_started(self) -> int:
        here = sum(1 for m in self.members.values() if not m.before and m.pid not in self.roots)
        return self.totals.children + here

    def ended_by_check(self) -> int:
        """Processes the check's teardown ended (CMD itself is told apart, as a flag)."""
        here = sum(1 for m in self.members.values() if m.ended_by_check and m.pid not in self.roots)
        return self.totals.ended + here

    def orphans_adopted(self) -> int:
        return self.totals.adopted + len(self.adopted)

    def lifetimes(self) -> list[float]:
        """Seconds each collected zombie was seen as one: from its exit to the last look."""
        return list(self.totals.lifetimes)

    def collected(self, by_me: bool) -> int:
        """Exited children collected by their parent (or the kernel, under SIG_IGN) or by us.

        Those never seen as zombies count too: a parent that reaps within a millisecond
        still collected them.
        """
        return self.totals.by_me if by_me else self.totals.by_parent

    def not_reaped_by_parent(self) -> int:
        """Zombies their parent still held, running, when the check ended it (or at the end).

        A zombie whose parent exited on its own is not counted here: a double fork's
        grandchild is meant for the subreaper, and a parent that exits holding zombies
        is counted among the zombies at the end.
        """
        here = sum(1 for m in self.members.values() if self._left_by_running_parent(m))
        return self.totals.not_reaped + here

    def _left_by_running_parent(self, m: Member) -> bool:
        if not self.program_zombie(m) or m.ppid == self.me:
            return False
        if m.gone is not None and m.collector != ZOMBIECTL:
            return False
        return m.parent_exited is None or m.parent_ended

    def slowest_parent_reap(self) -> float | None:
        return self.totals.slowest

    def oldest_under_parent(self, now: float) -> float | None:
        ages = [
            a
            for m in self.members.values()
            if self.program_zombie(m)
            for a in [m.age_under_parent(now)]
            if a is not None
        ]
        if self.totals.oldest is not None:
            ages.append(self.totals.oldest)
        return max(ages) if ages else None
