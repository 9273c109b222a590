"""Watching the tree: kernel events where possible, else samples; known zombies polled.

`Observer.step()` brings the `Tree` up to date: it reads the process events (or, without
them, samples the tree every `sample_every` seconds through ``/proc/PID/task/*/children``,
never the whole table), polls only the zombies it knows, backing off for ones that stay,
and notes orphans re-parented to zombiectl. Reaping is not done here: the session decides
when (it must count CMD's zombies before it collects them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zombiectl.check.tree import Tree
from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc import table as proctable
from zombiectl.proc.events import ProcEvents

# Seconds between two looks at zombiectl's own children. An orphan that dies is seen at
# once through its exit event (its parent is zombiectl); this look is for live ones.
ADOPTION_CHECK = 0.25


class Observer:
    def __init__(
        self,
        tree: Tree,
        events: ProcEvents | None,
        sample_every: float,
        ignore: set[int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tree = tree
        self.events = events
        self.sample_every = sample_every
        self.ignore = ignore  # zombiectl's own helpers (the guard)
        self.clock = clock
        self._next_sample = 0.0
        self._next_adoption = 0.0
        self._lost = 0
        self.new_pids: list[int] = []
        self.mine_exited = False  # a child of zombiectl exited: collect it now

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
        due.extend(m.next_poll for m in self.tree.zombies())
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
        if force_sample or (self.events is None and now >= self._next_sample):
            self.sample(now)
            self._next_sample = now + self.sample_every
            changed = True
        changed = self.poll_zombies(self.clock()) or changed
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
                if ev.pid not in self.ignore and tree.fork(ev.pid, ev.ppid, ev.time):
                    self.new_pids.append(ev.pid)
                    changed = True
            elif ev.kind == "exit" and ev.pid in tree.members:
                changed = True
                tree.exit(ev.pid, ev.time, ev.ppid)
                if ev.ppid == tree.me:
                    tree.adopt(ev.pid)
                    self.mine_exited = True
                if ev.pid == tree.root:
                    tree.root_status = ev.status
        return changed

    def sample(self, now: float) -> None:
        """Read the whole tree from /proc: its root's descendants, and zombiectl's adoptees."""
        tree = self.tree
        procs = []
        roots = [tree.root] if tree.me == 0 else [tree.me]
        for root in roots:
            try:
                procs.extend(proctable.descendants_of(root))
            except (NoSuchProcess, PermissionDenied):
                continue
        if tree.me == 0:
            top = proctable.read_proc(tree.root)
            if top is not None:
                procs.append(top)
        procs = [p for p in procs if p.pid not in self.ignore]
        known = set(tree.members)
        tree.seen(procs, now, complete=True)
        self.new_pids.extend(p.pid for p in procs if p.pid not in known)

    def poll_zombies(self, now: float) -> bool:
        due = self.tree.due(now)
        for m in due:
            info = proctable.read_proc(m.pid)
            if info is None or not info.is_zombie:
                self.tree.gone(m.pid, now, by_me=False)
            else:
                if info.ppid != m.ppid and info.ppid == self.tree.me:
                    self.tree.adopt(m.pid)
                self.tree.polled(m, now)
        return bool(due)

    def note_adopted(self) -> None:
        if self.tree.me == 0:
            return
        for pid in proctable.child_pids(self.tree.me):
            if pid not in self.ignore:
                self.tree.adopt(pid)

    def take_new_pids(self) -> list[int]:
        out, self.new_pids = self.new_pids, []
        return out
