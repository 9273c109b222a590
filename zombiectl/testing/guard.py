"""Who started which process during a test session, and what each test or fixture left.

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

Every process in the session's tree gets an owner the first time it is seen: the test
running at the time, or the session-, package-, module- or class-scoped fixture whose
setup was running; a new process whose parent belongs to such a fixture belongs to that
fixture too (a server's workers are the server's). Processes there before the session
started belong to nobody and are never blamed or touched.

A test is checked after its teardown (so fixtures that clean up there are not blamed); a
fixture is checked after its finaliser. Before anything is blamed, what outlives a test
by design is handed over (see `session`): to the session (forkservers, pool executors,
`keep`, ``zombies_ignore``), or to the wider-scoped fixture whose value holds the
process's Popen object (a helper process a function-scoped fixture caches in a session
object). What is left is reported once; in fail mode it is also collected (see
`tree.collect`), so the next test starts clean; in warn mode, and for an exempt test,
nothing is signalled or reaped.

Orphans: with the session a child subreaper, an orphaned descendant comes to pytest, not
to init. A zombie child of pytest that was seen before under another parent, or that
pytest did not start itself (see `forks`), is such an orphan: it is reaped at the next
read and blamed on no one (init would have reaped it). A running process that became an
orphan belongs from then on to the test during which that happened. Without the
subreaper, orphans go elsewhere, and the check finds those of the current test by a scan
of /proc: same session id as pytest, started since the test began, and a parent that is
pytest's ancestor (where orphans go).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from zombiectl.proc.files import pid_path, proc_path
from zombiectl.testing import forks, session
from zombiectl.testing.tree import Key, Proc, cmdline, collect, describe, kill, read_stat, read_tree

# What a test left (a process still running, or a zombie its owner may be about to reap)
# gets this long to go away on its own before it counts.
GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Owner:
    """A test (kind "test") or a fixture wider than one test (kind "fixture"); and three
    owners no check ever blames: "preexisting", "session" and "done" (reported once
    already, or left by an exempt test)."""

    kind: str
    name: str
    scope: str = "function"

    def label(self) -> str:
        if self.kind == "fixture":
            return f"{self.scope}-scoped fixture {self.name!r}"
        return self.name

    @property
    def blamable(self) -> bool:
        return self.kind in ("test", "fixture")


NOBODY = Owner("preexisting", "")
SESSION = Owner("session", "")
DONE = Owner("done", "")


@dataclass
class Leak:
    owner: Owner
    procs: list[Proc]
    lines: list[str] = field(default_factory=list)
    uncollected: list[Proc] = field(default_factory=list)
    collected: bool = True
    notes: list[str] = field(default_factory=list)

    def text(self, grace: float) -> str:
        n = len(self.procs)
        head = (
            f"{self.owner.label()} left {n} process{'es' if n != 1 else ''} behind "
            f"(checked after teardown, {grace:g} s grace for exiting processes):"
        )
        if not self.collected:
            tail = ["  left as they are: in warn mode nothing is signalled or reaped"]
        elif self.uncollected:
            pids = ", ".join(str(p.pid) for p in self.uncollected)
            tail = [f"  could not collect: {pids} (a zombie of a parent that is not pytest's)"]
        else:
            tail = ["  collected: running ones killed, zombies reaped"]
        notes = [f"  {note}" for note in self.notes]
        return "\n".join([head, *(f"  {line}" for line in self.lines), *notes, *tail])


@dataclass
class SessionProc:
    proc: Proc
    why: str
    first: str  # the test or fixture during which it was first seen


def boot_ticks() -> int:
    """Now, in the unit of /proc/PID/stat's start time (clock ticks after boot)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


class Ledger:
    """The owners of the session's processes, and the checks made on them.

    collect_leaks: fail mode (end and reap what is blamed); off in warn mode.
    ignore: ``zombies_ignore`` patterns. subreaper: False when the session is not one,
    so that orphans are looked for by a scan instead.
    """

    def __init__(
        self,
        grace: float = GRACE_SECONDS,
        me: int | None = None,
        *,
        collect_leaks: bool = True,
        ignore: Iterable[str] = (),
        subreaper: bool = True,
    ) -> None:
        self.me = os.getpid() if me is None else me
        self.grace = grace
        self.collect_leaks = collect_leaks
        self.ignore = tuple(ignore)
        self.subreaper = subreaper
        self.owner_of: dict[Key, Owner] = {}
        self.parent_of: dict[Key, int] = {}
        self.exempt: set[Owner] = set()
        self.session_procs: dict[Key, SessionProc] = {}
        # Wider-scoped fixtures set up and not yet finalised, widest first: their values.
        self.wide: dict[Owner, object] = {}
        self.started = boot_ticks()
        self.blind: list[str] = []
        # Children of pytest it did not fork: orphans it adopted, or held by Popen objects.
        self.adopted: set[Key] = set()
        for proc in read_tree(self.me):
            self._note(proc, NOBODY)

    def _note(self, proc: Proc, owner: Owner) -> None:
        self.owner_of[proc.key] = owner
        self.parent_of[proc.key] = proc.ppid

    def begin(self) -> None:
        """A test starts: orphans that escape from now on are its own (no subreaper)."""
        self.started = boot_ticks() - 1

    def claim(self, owner: Owner) -> list[Proc]:
        """Read the tree once; give new processes and fresh orphans an owner; reap
        orphaned zombies. Returns the tree as read."""
        missed, why = forks.missed()
        if missed:
            self.blind.append(
                f"{missed} fork{'s' if missed != 1 else ''} could not be recorded ({why}): "
                "zombie children of pytest are counted as this test's, not as orphans"
            )
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
                elif proc.is_zombie and proc.ppid == self.me and proc.key in self.adopted:
                    if held is None:
                        held = forks.held_by_python()
                    if proc.pid not in held:
                        self._reap_orphan(proc)  # died after adoption: init would reap it
                continue
            if (
                proc.is_zombie
                and proc.ppid == self.me
                and proc.pid not in forks.forked()
                and not self.blind
            ):
                if held is None:
                    held = forks.held_by_python()
                if proc.pid not in held:
                    self._reap_orphan(proc)
                    continue
            if proc.ppid == self.me and proc.pid not in forks.forked() and not self.blind:
                # Running, and not forked here: a Popen's child, or an orphan adopted
                # before it was first seen. Which of the two is asked only if it dies.
                self.adopted.add(proc.key)
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
            if theirs is SESSION and not self._forks_for_others(parent.key):
                return SESSION
        return owner

    def _forks_for_others(self, key: Key) -> bool:
        # A forkserver's children are whoever asked for them, not the forkserver's.
        held = self.session_procs.get(key)
        return held is not None and "forkserver" in held.why

    def _adopted(self, proc: Proc, owner: Owner) -> None:
        """proc was orphaned and adopted by the session since the last read."""
        self.parent_of[proc.key] = proc.ppid
        if proc.ppid == self.me:
            self.adopted.add(proc.key)
        if proc.is_zombie:
            if proc.ppid == self.me and proc.pid not in forks.held_by_python():
                self._reap_orphan(proc)
        elif self.owner_of[proc.key].blamable:
            self.owner_of[proc.key] = owner

    def _forget_gone(self, tree: list[Proc]) -> None:
        if len(self.owner_of) > len(tree):
            alive = {p.key for p in tree}
            for key in [k for k in self.owner_of if k not in alive]:
                del self.owner_of[key]
                del self.parent_of[key]
                self.adopted.discard(key)

    def check(self, owner: Owner, current: Owner) -> Leak | None:
        """What owner left behind (collected in fail mode); None when it left nothing.

        `current` owns whatever is new at this moment and not inherited (the test being
        torn down)."""
        tree = self.claim(current)
        mine = self._hand_over(tree, self._owned(tree, owner), owner)
        deadline = time.monotonic() + self.grace
        # A zombie counts only after the grace too: its owner (a thread in Popen.wait(),
        # a SIGCHLD handler) may be about to reap it.
        while mine and time.monotonic() < deadline:
            time.sleep(0.01)
            mine = self._owned(self.claim(current), owner)
        if mine:  # what started during the grace (a pool's new worker) is handed over too
            mine = self._hand_over(self.claim(current), mine, owner)
        escaped = self._escaped() if owner.kind == "test" and not self.subreaper else []
        notes, self.blind = self.blind, []
        if not mine and not escaped:
            return None
        tree = self.claim(current)
        names = {p.pid: p.name for p in tree}
        names.setdefault(self.me, "pytest")
        lines = [describe(p, names.get(p.ppid, "?")) for p in mine]
        for p in escaped:
            parent = read_stat(p.ppid)
            lines.append(describe(p, parent.name if parent else "?") + " (escaped pytest)")
        for p in mine:
            self.owner_of[p.key] = DONE
        if owner in self.exempt:
            return None
        left: list[Proc] = []
        if self.collect_leaks:
            owners = forks.holders()
            left = collect({p.key for p in mine}, self.me, owners=owners)
            kill(escaped)
            self.claim(current)
        keys = {m.key for m in mine}
        return Leak(
            owner,
            [*mine, *escaped],
            lines,
            [p for p in left if p.key in keys],
            collected=self.collect_leaks,
            notes=notes,
        )

    def _owned(self, tree: list[Proc], owner: Owner) -> list[Proc]:
        return [p for p in tree if self.owner_of.get(p.key) == owner]

    def _hand_over(self, tree: list[Proc], mine: list[Proc], owner: Owner) -> list[Proc]:
        """mine without what outlives owner by design, which goes to the session or to
        the wider fixture that holds it (with its descendants)."""
        if not mine:
            return mine
        long = session.long_lived()
        kept = session.kept()
        for p in mine:
            why = long.get(p.pid) or kept.get(p.key)
            if why is None and self.ignore:
                pattern = session.ignored(self.ignore, p.name, cmdline(p.pid))
                if pattern is not None:
                    why = f"matches zombies_ignore pattern {pattern!r}"
            if why is not None:
                self.owner_of[p.key] = SESSION
                self.session_procs[p.key] = SessionProc(p, why, owner.label())
        if self.wide and owner.kind == "test":
            self._to_fixtures([p for p in mine if self.owner_of[p.key] == owner])
        # Descendants go with their parent (the tree lists parents first).
        by_pid = {p.pid: p for p in tree}
        for p in mine:
            parent = by_pid.get(p.ppid)
            if self.owner_of[p.key] != owner or parent is None:
                continue
            theirs = self.owner_of.get(parent.key, owner)
            if theirs.kind == "fixture" or (
                theirs is SESSION and not self._forks_for_others(parent.key)
            ):
                self.owner_of[p.key] = theirs
        return [p for p in mine if self.owner_of[p.key] == owner]

    def _to_fixtures(self, procs: list[Proc]) -> None:
        holders = forks.holders()
        wanted = {p.pid: holders[p.pid] for p in procs if p.pid in holders}
        keys = {p.pid: p.key for p in procs}
        for fixture, value in self.wide.items():
            if not wanted:
                break
            for pid in session.held_from([value], wanted):
                self.owner_of[keys[pid]] = fixture
                del wanted[pid]

    def _escaped(self) -> list[Proc]:
        """The current test's orphans outside the tree (no subreaper): see the module."""
        try:
            sid = os.getsid(0)
            names = os.listdir(proc_path())
        except OSError:
            return []
        ancestors: set[int] = set()
        pid = self.me
        while pid > 1 and len(ancestors) < 4096:
            stat = read_stat(pid)
            if stat is None:
                break
            pid = stat.ppid
            ancestors.add(pid)
        found: dict[int, Proc] = {}
        candidates: list[Proc] = []
        for name in names:
            if not name.isdigit() or int(name) == self.me:
                continue
            proc = read_stat(int(name))
            if proc is None or proc.starttime < self.started or proc.is_zombie:
                continue
            if self.owner_of.get(proc.key) is not None or _session_of(proc.pid) != sid:
                continue
            candidates.append(proc)
        grew = True
        while grew:  # an escaped process's own children escaped with it
            grew = False
            for proc in candidates:
                if proc.pid not in found and (proc.ppid in ancestors or proc.ppid in found):
                    found[proc.pid] = proc
                    grew = True
        for proc in found.values():
            self.owner_of[proc.key] = DONE
            self.parent_of[proc.key] = proc.ppid
        return list(found.values())

    def leftovers(self) -> list[Proc]:
        """Every process the session started that a test or fixture still owns."""
        return [p for p in read_tree(self.me) if self.owner_of.get(p.key, DONE).blamable]

    def long_lived(self) -> list[SessionProc]:
        """The processes handed to the session, in the order they were."""
        return list(self.session_procs.values())


def _session_of(pid: int) -> int | None:
    try:
        with open(pid_path(pid, "stat"), "rb") as f:
            raw = f.read(1024)
        return int(raw[raw.rfind(b")") + 2 :].split()[3])  # field 6
    except (OSError, ValueError, IndexError):
        return None
