"""Watching the tree: kernel process events where possible, else samples of /proc.

`Observer.step()` brings the `Tree` up to date: it reads the process events (or, without
them, samples the tree every `sample_every` seconds through ``/proc/PID/task/*/children``,
never the whole table), looks at the exited members it knows (1 ms apart for their first
50 ms, then less often), and notes orphans re-parented to zombiectl. Reaping is not done
here: the owner decides when (a check counts CMD's zombies before it collects them).

The kernel's events can arrive out of order (a grandchild's fork before its parent's):
a fork whose parent is unknown waits a moment in `_pending`, and joins when its parent
does. An exit that names zombiectl or a member as parent but a pid the tree never saw
means an event was missed: the tree is read again from /proc.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc import table as proctable
from zombiectl.proc.events import ProcEvents
from zombiectl.proc.identity import read_identity
from zombiectl.proc.pidfd import started_at, starttime_of
from zombiectl.supervise.tree import Tree

# Seconds between two looks at zombiectl's own children. An orphan that dies is seen at
# once through its exit event (its parent is zombiectl); this look is for live ones.
ADOPTION_CHECK = 0.25
# Forks whose parent is not (yet) a member: kept this long, at most this many.
PENDING_FOR = 1.0
PENDING_MAX = 4096


class Observer:
    def __init__(
        self,
        tree: Tree,
        events: ProcEvents | None,
        sample_every: float,
        clock: Callable[[], float] = time.monotonic,
        watch_exited: bool = True,
    ) -> None:
        self.tree = tree
        self.events = events
        self.sample_every = sample_every
        self.clock = clock
        # False (the guard): nothing is timed, so exited members are never looked at.
        self.watch_exited = watch_exited
        self._next_sample = 0.0
        self._next_adoption = 0.0
        self._lost = 0
        self._pending: OrderedDict[int, tuple[int, float]] = OrderedDict()  # pid -> (ppid, t)
        self._reconcile = False
        self.new_pids: list[int] = []
        self.mine_exited = False  # a child of zombiectl exited: collect it now
        self.started_after = 0  # a sample adopts zombiectl's children started after this tick

    @property
    def resolution(self) -> float | None:
        """Seconds between samples; None when every fork and exit is seen."""
        return None if self.events is not None else self.sample_every

    def fileno(self) -> int | None:
        return self.events.fileno() if self.events is not None else None

    def timeout(self) -> float:
        """How long the caller may sleep before the next step is due."""
        now = self.clock()
        due = [self._next_adoption]
        if self.events is None:
            due.append(self._next_sample)
        nxt = self.tree.next_due() if self.watch_exited else None
        if nxt is not None:
            due.append(nxt)
        return max(0.0, min(due) - now)

    def step(self, force_sample: bool = False) -> bool:
        """Bring the tree up to date; True if anything about the tree was learnt.

        On a busy machine most events concern other processes: a step that learnt
        nothing lets the caller skip its own work, which keeps the CPU cost low.
        """
        now = self.clock()
        changed = False
        if self.events is not None:
            changed = self._apply_events()
            if self.events.lost != self._lost:  # events were dropped: catch up from /proc
                self._lost = self.events.lost
                force_sample = True
        if self._reconcile:
            self._reconcile = False
            force_sample = True
        if force_sample or (self.events is None and now >= self._next_sample):
            self.sample(now)
            self._next_sample = now + self.sample_every
            changed = True
        if self.watch_exited:
            changed = self.look_at_exited(self.clock()) or changed
        if force_sample or now >= self._next_adoption:
            self.note_adopted()
            self._next_adoption = now + ADOPTION_CHECK
            self.mine_exited = changed = True
        return changed

    def _apply_events(self) -> bool:
        assert self.events is not None
        tree = self.tree
        changed = False
        for ev in self.events.read():
            if ev.kind == "fork":
                if self._fork(ev.pid, ev.ppid, ev.time):
                    changed = True
                elif ev.pid not in tree.ignore:
                    self._remember(ev.pid, ev.ppid, ev.time)
            elif ev.kind == "sid" and ev.pid in tree.members:
                self.new_pids.append(ev.pid)
                changed = True
            elif ev.kind == "exit":
                changed = self._exit(ev.pid, ev.ppid, ev.time, ev.status) or changed
        return changed

    def _fork(self, pid: int, ppid: int, t: float) -> bool:
        """Join pid, then every pending fork that names it (or its own children) as parent."""
        if not self._join(pid, ppid, t):
            return False
        self.new_pids.append(pid)
        todo = [pid]
        while todo and self._pending:
            parent = todo.pop()
            kids = [k for k, (pp, _) in self._pending.items() if pp == parent]
            for kid in kids:
                _, kt = self._pending.pop(kid)
                if self._join(kid, parent, kt):
                    self.new_pids.append(kid)
                    todo.append(kid)
        return True

    def _join(self, pid: int, ppid: int, t: float) -> bool:
        tree = self.tree
        if not tree.joins(ppid):
            return False
        # Without a start time (gone already, or its pid names another process now) it
        # is still counted, from its exit event, but never signalled.
        return tree.fork(pid, ppid, t, self._start_of(pid, t))

    def _start_of(self, pid: int, t: float) -> int | None:
        """pid's start time if pid still names the process forked at t, else None.

        None makes a member that is never signalled: whatever holds the pid now is
        another process, and the one that was forked has already gone.
        """
        start = starttime_of(pid)
        # t is CLOCK_MONOTONIC, the kernel's event clock, in both modes: time.monotonic()
        # reads that clock on Linux.
        if start is None or not started_at(start, t):
            return None
        return start

    def _remember(self, pid: int, ppid: int, t: float) -> None:
        self._pending[pid] = (ppid, t)
        while self._pending:
            first = next(iter(self._pending.values()))
            if len(self._pending) <= PENDING_MAX and first[1] >= t - PENDING_FOR:
                break
            self._pending.popitem(last=False)

    def _exit(self, pid: int, ppid: int, t: float, status: int | None) -> bool:
        tree = self.tree
        self._pending.pop(pid, None)
        if pid not in tree.members:
            if ppid and ppid != pid and tree.joins(ppid):
                self._reconcile = True  # a member's child the tree never saw: missed events
            return False
        tree.exit(pid, t, ppid)
        if not self.watch_exited:
            tree.forget(pid)
            return True
        if ppid and ppid == tree.me:
            tree.adopt(pid)
            self.mine_exited = True
        if pid == tree.root:
            tree.root_status = status
        return True

    def sample(self, now: float) -> None:
        """Read the whole tree from /proc: each root's descendants, and zombiectl's adoptees."""
        tree = self.tree
        procs: list[proctable.ProcInfo] = []
        complete = True
        if tree.me:
            mine = self._mine() if tree.me_alive else None
            if mine is None:  # zombiectl is gone (the guard's view): what the members hold
                complete = False
                mine = self._below_members()
            procs.extend(mine)
        else:
            for root in tree.roots:
                top = proctable.read_proc(root)
                if top is not None:
                    procs.append(top)
                try:
                    procs.extend(proctable.descendants_of(root))
                except (NoSuchProcess, PermissionDenied):
                    continue
        joined = tree.seen(procs, now, complete=complete)
        # Each process read here is a member (a descendant of zombiectl or of the root):
        # its start time, read now, pins it.
        for p in procs:
            m = tree.members.get(p.pid)
            if m is not None and m.starttime is None and m.gone is None:
                st = starttime_of(p.pid)
                if st is not None:
                    tree.note_starttime(p.pid, st)
        self.new_pids.extend(joined)

    def _below_members(self) -> list[proctable.ProcInfo]:
        out: list[proctable.ProcInfo] = []
        for m in self.tree.live():
            if m.starttime is None:
                continue  # never pinned: its pid may name a stranger now
            ident = read_identity(m.pid)
            if ident is None or ident.starttime != m.starttime:
                continue  # gone, or its pid names another process now
            out.append(proctable.ProcInfo(m.pid, ident.ppid, ident.state, ident.name))
            try:
                out.extend(proctable.descendants_of(m.pid))
            except (NoSuchProcess, PermissionDenied):
                continue
        return out

    def _mine(self) -> list[proctable.ProcInfo] | None:
        """zombiectl's descendants that belong to the tree (not its helpers, not strangers).

        A child of zombiectl that is not a member yet joins only if it started after the
        tree did: a process that embeds zombiectl may have children of its own.
        """
        tree = self.tree
        out: list[proctable.ProcInfo] = []
        me = proctable.read_proc(tree.me)
        if me is None or me.is_zombie:
            return None
        try:
            kids = proctable.children_of(tree.me)
        except (NoSuchProcess, PermissionDenied):
            return None
        for k in kids:
            if k.pid in tree.ignore:
                continue
            known = tree.members.get(k.pid)
            if known is None or known.gone is not None:
                st = starttime_of(k.pid)
                if st is None or st < self.started_after:
                    continue
            out.append(k)
            if not k.is_zombie:
                try:
                    out.extend(proctable.descendants_of(k.pid))
                except (NoSuchProcess, PermissionDenied):
                    continue
        return out

    def look_at_exited(self, now: float) -> bool:
        """Look at each exited member whose look is due: a zombie still, or gone."""
        due = self.tree.due(now)
        for m in due:
            info = proctable.read_proc(m.pid)
            zombie = info is not None and info.is_zombie
            if zombie and info is not None and info.ppid == self.tree.me and self.tree.me:
                self.tree.adopt(m.pid)
            self.tree.looked(m, now, zombie)
        return bool(due)

    def note_adopted(self) -> None:
        tree = self.tree
        if not tree.me:
            return
        try:
            kids = proctable.child_pids(tree.me)
        except (NoSuchProcess, PermissionDenied):
            return
        for pid in kids:
            if pid in tree.members and tree.members[pid].gone is None:
                tree.adopt(pid)

    def take_new_pids(self) -> list[int]:
        out, self.new_pids = self.new_pids, []
        return out
