"""`zombiectl reap`'s logic: plan which parents to act on, climb the ladder, verify.

Only a zombie's parent can reap it, so everything here works on parents. The plan groups
the targeted zombies by parent (each parent is acted on once) and decides, before any
signal, which parents must be refused. The ladder then, per parent:

1. SIGCHLD, repeated while the parent makes progress: a handler that reaps one child
   per signal (a common bug: signals coalesce) is cleared by repeated nudges;
2. with --kill-parent, SIGTERM, and with --force SIGKILL if the parent outlives SIGTERM
   by the timeout; never to the init of a PID namespace (a container's PID 1), which
   is only nudged: ending it would end every process in its container;
3. once the parent is gone, a check that its adopter (init or the nearest subreaper)
   reaped the zombies it inherited.

The ladder takes its clock, its sleep and its view of the parent as arguments, so its
timing is tested with a fake clock. Every signal goes through
`zombiectl.proc.identity.send_signal_safely`.

A shell transcript (`make_plan`, then `execute`), with a parent that ignores the nudge:

    $ zombiectl reap --pid 28642 --yes --timeout 0.2
    PARENT  NAME     BEFORE  AFTER  ACTIONS  RESULT     WHY
     28642  python3       1      1  SIGCHLD  remaining  the parent did not reap within 0.2s of SIGCHLD; --kill-parent ends it so that its adopter reaps them
    reaped 0 zombies; 1 remain under 1 parent
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from zombiectl.errors import (
    EXIT_CONDITION,
    EXIT_OK,
    EXIT_PERMISSION,
    BadUsage,
    NoSuchProcess,
    PermissionDenied,
)
from zombiectl.proc.identity import (
    NAMESPACE_INIT,
    SendResult,
    SendStatus,
    Target,
    namespace_init_reason,
    read_identity,
    refusal_reason,
    send_signal_safely,
)
from zombiectl.proc.records import ProcIdentity
from zombiectl.proc.table import child_pids, require_process, scan, user_of_pid
from zombiectl.untrusted import display, for_json

REAPED = "reaped"
REMAINING = "remaining"
REFUSED = "refused"
DENIED = "denied"

Log = Callable[[str], None]

# Once the parent is gone there is nothing left to send, only a check to make; some
# inits reap by polling (every second or two), so the check waits at least this long.
ADOPTION_WAIT = 5.0
# How often a --zombie's parent is read again when the zombie changes parent meanwhile.
PARENT_TRIES = 3
STOPPED = {
    "T": "stopped (state T)",
    "t": "stopped by a debugger (state t)",
}
INIT_FIX = "restart it with an init that reaps (`docker run --init`, tini, `zombiectl run --`)"

MAIN_FIX = "fix the program so that it waits for its children, or restart the container"

Reader = Callable[[int], "ProcIdentity | None"]


def _no_log(_line: str) -> None:
    pass


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ParentPlan:
    """One parent to act on, with the zombies it had when the plan was made."""

    pid: int
    name: str
    user: str
    zombie_pids: tuple[int, ...]
    target: Target | None  # None when refused, or when the parent vanished while planning
    refused: str | None = None
    note: str = ""
    # Why the parent may be nudged but never ended (a PID namespace's init, or a
    # container's main process without --stop-container), or None.
    end_refused: str | None = None
    # The id of the container the parent is in (None: the host), and of the one that
    # ending it would stop (it is that container's main process).
    container: str | None = None
    stops_container: str | None = None
    # pid -> start time of each zombie, so that a reused pid is never counted as one.
    zombie_starts: Mapping[int, float] = field(default_factory=dict, compare=False, hash=False)

    @property
    def zombies(self) -> int:
        return len(self.zombie_pids)

    @property
    def actionable(self) -> bool:
        return self.refused is None and self.target is not None and bool(self.zombie_pids)


@dataclass(frozen=True)
class Plan:
    parents: list[ParentPlan]
    timeout: float = 2.0
    kill_parent: bool = False
    force: bool = False
    stop_container: bool = False

    @property
    def actionable(self) -> list[ParentPlan]:
        return [p for p in self.parents if p.actionable]

    def steps(self, parent: ParentPlan | None = None) -> list[str]:
        """The signals the ladder may send (to parent, if given), in order."""
        out = ["SIGCHLD"]
        if self.kill_parent and (parent is None or parent.end_refused is None):
            out.append("SIGTERM")
            if self.force:
                out.append("SIGKILL")
        return out


def stopped_note(state: str) -> str:
    """What a stopped parent means for the ladder, said before anything is sent."""
    return (
        f"the parent is {STOPPED[state]}: it cannot reap, and SIGTERM stays pending, until it is "
        "continued (SIGCONT); SIGKILL ends it"
    )


def _plan_parent(
    pid: int, ident: ProcIdentity | None, zombies: Mapping[int, float | None], note: str = ""
) -> ParentPlan:
    """zombies: pid -> start time, None where it was not read (a parent that is gone)."""
    pids = tuple(sorted(zombies))
    name = ident.name if ident is not None else "?"
    reason = refusal_reason(pid, ident)
    if reason is not None:
        return ParentPlan(pid, name, user_of_pid(pid), pids, None, refused=reason)
    if ident is None:
        note = note or "the parent exited while planning; run again"
        return ParentPlan(pid, name, "?", pids, None, note=note)
    if ident.is_zombie:
        note = "is itself a zombie: its own parent must reap it (name that one with --zombie)"
    elif ident.state in STOPPED:
        note = stopped_note(ident.state)
    target = Target(pid, ident.starttime, ident.name)
    return ParentPlan(
        pid,
        name,
        user_of_pid(pid),
        pids,
        target,
        note=note,
        end_refused=namespace_init_reason(pid),
        zombie_starts={z: t for z, t in zombies.items() if t is not None},
    )


def _zombie_children(pid: int, reader: Reader) -> dict[int, float]:
    """pid -> start time of each zombie child of pid."""
    out: dict[int, float] = {}
    for kid in child_pids(pid):
        ident = reader(kid)
        if ident is not None and ident.ppid == pid and ident.is_zombie:
            out[kid] = ident.starttime
    return out


@dataclass(frozen=True)
class ParentOfZombie:
    """What `confirm_parent` found: the zombie's ppid, and that parent's identity or why not."""

    ppid: int
    parent: ProcIdentity | None
    why: str = ""
    zombie_start: float | None = None


def confirm_parent(zpid: int, reader: Reader = read_identity) -> ParentOfZombie:
    """The parent of zombie zpid, identified by pid and start time, or why it is not.

    The zombie is read, then its parent, then the zombie again. If the zombie still
    names the same ppid, the parent read in between was its parent: a parent hands its
    children to their adopter as it exits, before its pid can be freed and reused. A
    parent also started no later than its child; a parent read that says otherwise is
    not trusted, and nothing is sent to it.
    """
    ppid = 0
    for _ in range(PARENT_TRIES):
        first = reader(zpid)
        if first is None or not first.is_zombie:
            return ParentOfZombie(ppid, None, f"zombie {zpid} was reaped while planning")
        ppid = first.ppid
        parent = reader(ppid) if ppid > 0 else None
        again = reader(zpid)
        if again is None or not again.is_zombie or again.starttime != first.starttime:
            return ParentOfZombie(ppid, None, f"zombie {zpid} was reaped while planning")
        if again.ppid != ppid:
            continue  # adopted meanwhile: its new parent is the one to act on
        if parent is not None and parent.starttime > first.starttime:
            why = (
                f"pid {ppid} started after zombie {zpid}, so it is not its parent "
                "(the pid was reused?): nothing is sent to it; run again"
            )
            return ParentOfZombie(ppid, None, why, first.starttime)
        return ParentOfZombie(ppid, parent, "", first.starttime)
    why = f"zombie {zpid} kept changing parent while planning; run again"
    return ParentOfZombie(ppid, None, why)


def make_plan(
    parents: Sequence[int] = (),
    zombies: Sequence[int] = (),
    all_parents: bool = False,
    *,
    timeout: float = 2.0,
    kill_parent: bool = False,
    force: bool = False,
    stop_container: bool = False,
    reader: Reader = read_identity,
) -> Plan:
    """Resolve the targets to parents; refuse what must not be signalled. Signals nothing.

    Raises NoSuchProcess (exit 3) for a named pid that does not exist and BadUsage
    (exit 2) for a --zombie pid that is not a zombie, before anything is done.
    `reader` reads a process's identity (tests inject a reused pid).

    A container's main process (its PID 1, or the child of an init that exits with it)
    is never ended unless `stop_container` and it was named (--pid, --zombie): --all
    never stops a container.
    """
    if not (parents or zombies or all_parents):
        raise BadUsage("name what to reap: --pid PARENT, --zombie PID or --all")
    order: list[int] = []
    for pid in parents:
        require_process(pid)
        order.append(pid)
    # A --zombie's parent is identified once, by pid and start time (confirm_parent).
    confirmed: dict[int, ParentOfZombie] = {}
    seen: dict[int, dict[int, float | None]] = {}  # parent -> zombie -> start time
    for zpid in zombies:
        info = require_process(zpid)
        if not info.is_zombie:
            raise BadUsage(
                f"pid {zpid} ({info.name}) is not a zombie (state {info.state}); "
                "--zombie takes a zombie's pid, --pid its parent's"
            )
        found = confirm_parent(zpid, reader)
        confirmed.setdefault(found.ppid, found)
        seen.setdefault(found.ppid, {})[zpid] = found.zombie_start
        order.append(found.ppid)
    named = set(order)
    if all_parents:
        for group in scan().zombies_by_parent():
            seen.setdefault(group.pid, {}).update(dict.fromkeys(group.zombie_pids))
            order.append(group.pid)
    plans: dict[int, ParentPlan] = {}
    for pid in order:
        if pid not in plans:  # each parent once, however it was named
            plans[pid] = _plan_for(pid, confirmed.get(pid), seen.get(pid, {}), reader)
    allowed = named if stop_container else set()
    placed = with_containers(list(plans.values()), allowed)
    ordered = sorted(placed, key=lambda p: (-p.zombies, p.pid))
    return Plan(
        ordered,
        timeout=timeout,
        kill_parent=kill_parent,
        force=force,
        stop_container=stop_container,
    )


def stops_text(cid: str) -> str:
    return f"ending it stops container {display(cid)}"


def with_containers(plans: list[ParentPlan], may_stop: set[int]) -> list[ParentPlan]:
    """Each plan with its container, and ending refused for a container's main process
    unless its pid is in may_stop. A namespace's PID 1 stays refused whatever."""
    from dataclasses import replace

    from zombiectl.proc.containers import Attributor, main_process_of

    attributor = Attributor()
    found = {p.pid: attributor.container_of(p.pid) for p in plans if p.pid > 0}
    mains = {pid: main_process_of(attributor, pid) for pid in found}
    attributor.finish()
    out = []
    for p in plans:
        c, main = found.get(p.pid), mains.get(p.pid)
        if c is None:
            out.append(p)
            continue
        stops = main.id if main is not None else None
        end_refused = p.end_refused
        if end_refused is None and stops is not None and p.pid not in may_stop:
            end_refused = (
                f"the main process of container {display(stops)}: "
                f"{stops_text(stops)} (--stop-container ends it anyway)"
            )
        out.append(replace(p, container=c.id, stops_container=stops, end_refused=end_refused))
    return out


def _plan_for(
    pid: int,
    confirmed: ParentOfZombie | None,
    seen: Mapping[int, float | None],
    reader: Reader,
) -> ParentPlan:
    """The plan for one parent: its identity (read now, or as confirmed) and its zombies.

    `seen`: the zombies already known to be its (named, or found by a scan), kept when
    the parent cannot be acted on, so that the report counts them.
    """
    if pid == 0:
        return _plan_parent(0, None, seen)
    if confirmed is not None:
        ident, why = confirmed.parent, confirmed.why
    else:
        ident, why = reader(pid), ""
    if ident is None:
        return _plan_parent(pid, None, seen, why)
    try:
        kids = _zombie_children(pid, reader)
    except NoSuchProcess:
        return _plan_parent(pid, None, seen)
    return _plan_parent(pid, ident, dict(kids))


# --------------------------------------------------------------------------- the ladder


class ParentView(Protocol):
    """What the ladder needs to know about, and do to, one parent."""

    def observe(self) -> tuple[int, bool]:
        """(targeted zombies that still exist, whether the planned parent is still alive)."""
        ...

    def send(self, sig: int) -> SendResult: ...

    def adopter(self) -> str | None:
        """Who holds the remaining zombies now that the parent is gone ("1 (init)")."""
        ...

    def stopped(self) -> str | None:
        """How the parent is stopped ("stopped (state T)"), or None while it can run."""
        ...


@dataclass
class LadderOutcome:
    result: str
    reason: str
    actions: list[str] = field(default_factory=list)
    sigchld_sent: int = 0
    adopter: str | None = None


def _fewer_than(last: int) -> Callable[[int, bool], bool]:
    """Done once the parent reaped at least one zombie since `last`, or exited."""
    return lambda remaining, alive: remaining < last or not alive


class Ladder:
    """The escalation for one parent, as a state machine over an injectable clock."""

    def __init__(
        self,
        view: ParentView,
        *,
        timeout: float = 2.0,
        kill_parent: bool = False,
        force: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_min: float = 0.001,
        poll_max: float = 0.05,
        adoption_wait: float = ADOPTION_WAIT,
        end_refused: str | None = None,
    ) -> None:
        self.view = view
        self.end_refused = end_refused
        self.timeout = timeout
        self.kill_parent = kill_parent
        self.force = force
        self.clock = clock
        self.sleep = sleep
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.adoption_wait = max(adoption_wait, timeout)
        self.out = LadderOutcome(REMAINING, "")

    # -- helpers

    def _finish(self, result: str, reason: str) -> LadderOutcome:
        self.out.result = result
        self.out.reason = reason
        return self.out

    def _wait(
        self, done: Callable[[int, bool], bool], timeout: float | None = None
    ) -> tuple[int, bool]:
        """Poll the parent until done(remaining, alive) or the timeout passes.

        Polls fast at first (a parent that reaps in its handler does so within
        microseconds, and one nudge per poll is what clears a one-per-signal parent
        quickly), then backs off.
        """
        deadline = self.clock() + (self.timeout if timeout is None else timeout)
        interval = self.poll_min
        while True:
            remaining, alive = self.view.observe()
            if done(remaining, alive):
                return remaining, alive
            now = self.clock()
            if now >= deadline:
                return remaining, alive
            self.sleep(min(interval, deadline - now))
            interval = min(interval * 2, self.poll_max)

    def _send(self, sig: int) -> SendResult:
        res = self.view.send(sig)
        if res.status is SendStatus.SENT:
            name = signal.Signals(sig).name
            if sig == signal.SIGCHLD:
                self.out.sigchld_sent += 1
            if name not in self.out.actions:
                self.out.actions.append(name)
        return res

    def _not_sent(self, res: SendResult) -> LadderOutcome:
        if res.status is SendStatus.DENIED:
            return self._finish(DENIED, f"not allowed to signal the parent: {res.detail}")
        if res.status is SendStatus.REFUSED:
            return self._finish(REFUSED, f"not ended: it is {res.detail}; {INIT_FIX}")
        remaining, alive = self.view.observe()
        if not alive:
            return self._adoption("the parent exited")
        if remaining == 0:
            if self.out.sigchld_sent:
                return self._reaped_by_nudges()
            return self._finish(REAPED, "the zombies were reaped before any signal")
        # The parent lives but no zombie names it any more: nothing left to signal safely.
        return self._finish(REMAINING, f"not signalled: {res.detail}")

    def _settle(self, remaining: int) -> tuple[int, bool]:
        """While a handler is still reaping, let it finish before nudging again.

        Without this a parent that reaps everything on one SIGCHLD would be counted as
        needing a dozen; with it, a one-per-signal parent costs one extra poll a nudge.
        """
        alive = True
        while remaining:
            self.sleep(0)  # a yield: the handler runs on the other core or right now
            now, alive = self.view.observe()
            if now >= remaining or not alive:
                return now, alive
            remaining = now
        return remaining, alive

    def _reaped_by_nudges(self) -> LadderOutcome:
        n = self.out.sigchld_sent
        return self._finish(
            REAPED, f"the parent reaped them after {n} SIGCHLD{'s' if n > 1 else ''}"
        )

    def _timeout_text(self) -> str:
        return f"{self.timeout:g}s"

    # -- the states

    def run(self) -> LadderOutcome:
        remaining, alive = self.view.observe()
        if remaining == 0:
            return self._finish(REAPED, "no zombies left to reap")
        if not alive:
            return self._adoption("the parent had exited")
        return self._nudge(remaining)

    def _nudge(self, remaining: int) -> LadderOutcome:
        while True:
            res = self._send(signal.SIGCHLD)
            if res.status is not SendStatus.SENT:
                return self._not_sent(res)
            last = remaining
            remaining, alive = self._wait(_fewer_than(last))
            if not alive:
                return self._adoption("the parent exited")
            if remaining == 0:
                return self._reaped_by_nudges()
            if remaining >= last:
                break  # no progress within the timeout: this rung is done
            remaining, alive = self._settle(remaining)
            if not alive:
                return self._adoption("the parent exited")
            if remaining == 0:
                return self._reaped_by_nudges()
        return self._after_nudges()

    def _after_nudges(self) -> LadderOutcome:
        """SIGCHLD made no more progress: end the parent, or say why not."""
        stopped = self.view.stopped()
        if stopped is not None:
            why = f"the parent is {stopped}: SIGCHLD stays pending until it is continued (SIGCONT)"
        else:
            why = f"the parent did not reap within {self._timeout_text()} of SIGCHLD"
        if self.end_refused is not None:
            # A namespace's init, or a container's main process, is nudged only: ending
            # it ends its whole container.
            result = REFUSED if self.kill_parent else REMAINING
            fix = INIT_FIX if self.end_refused == NAMESPACE_INIT else MAIN_FIX
            return self._finish(result, f"{why}; not ended: it is {self.end_refused}; {fix}")
        if not self.kill_parent:
            return self._finish(
                REMAINING, f"{why}; --kill-parent ends it so that its adopter reaps them"
            )
        return self._terminate()

    def _terminate(self) -> LadderOutcome:
        res = self._send(signal.SIGTERM)
        if res.status is not SendStatus.SENT:
            return self._not_sent(res)
        remaining, alive = self._wait(lambda r, a: r == 0 or not a)
        if not alive:
            return self._adoption("the parent exited on SIGTERM")
        if remaining == 0:
            return self._finish(REAPED, "the parent reaped them on SIGTERM")
        if not self.force:
            return self._finish(REMAINING, self._sigterm_pending())
        res = self._send(signal.SIGKILL)
        if res.status is not SendStatus.SENT:
            return self._not_sent(res)
        remaining, alive = self._wait(lambda r, a: r == 0 or not a)
        if alive and remaining:
            return self._finish(
                REMAINING,
                f"the parent outlived SIGKILL by {self._timeout_text()} "
                "(stuck in the kernel, state D?)",
            )
        return self._adoption("the parent was killed")

    def _sigterm_pending(self) -> str:
        """Why a parent still lives after SIGTERM, said as it is.

        A stopped process does not act on SIGTERM: the signal waits until something
        continues it. zombiectl does not send SIGCONT itself: whoever stopped the
        process (Ctrl-Z, a debugger, an operator's SIGSTOP) did so on purpose, and
        continuing it runs its code again. SIGKILL ends a stopped process at once.
        """
        stopped = self.view.stopped()
        if stopped is None:
            return f"the parent outlived SIGTERM by {self._timeout_text()}; --force sends SIGKILL"
        return (
            f"the parent is {stopped}: SIGTERM is pending and will end it when it is "
            "continued (SIGCONT), which zombiectl leaves to whoever stopped it; "
            "--force sends SIGKILL, which ends it now"
        )

    def _adoption(self, how: str) -> LadderOutcome:
        remaining, _ = self._wait(lambda r, a: r == 0, self.adoption_wait)
        if remaining == 0:
            return self._finish(REAPED, f"{how}; its adopter reaped the zombies")
        self.out.adopter = self.view.adopter()
        holder = self.out.adopter or "their adopter"
        return self._finish(
            REMAINING,
            f"{how}; {remaining} adopted by {holder}, not reaped within {self.adoption_wait:g}s",
        )


class LiveParent:
    """The ladder's view of a real parent, signalled only through send_signal_safely."""

    def __init__(
        self,
        target: Target,
        zombie_pids: Sequence[int],
        *,
        starts: Mapping[int, float] | None = None,
        use_pidfd: bool | None = None,
        log: Log = _no_log,
    ) -> None:
        self.target = target
        self.zombies = frozenset(zombie_pids)
        self.starts = dict(starts or {})
        self.use_pidfd = use_pidfd
        self.log = log
        self.current: list[int] = sorted(self.zombies)

    def _me(self) -> ProcIdentity | None:
        ident = read_identity(self.target.pid)
        if ident is None or ident.starttime != self.target.starttime:
            return None
        return ident

    def _alive(self) -> bool:
        ident = self._me()
        return ident is not None and not ident.is_zombie

    def stopped(self) -> str | None:
        ident = self._me()
        return None if ident is None else STOPPED.get(ident.state)

    def observe(self) -> tuple[int, bool]:
        if self._alive():
            # O(children): one read of the parent's children list, not one per zombie.
            try:
                kids = child_pids(self.target.pid)
            except (NoSuchProcess, PermissionDenied):  # gone or hidden: ask each zombie below
                kids = []
            self.current = [k for k in kids if k in self.zombies]
            if self.current:
                return len(self.current), True
            # An empty list is not trusted: the kernel's children file can skip entries
            # while the parent reaps (it is read in pages), and a parent that exited
            # just now has handed its children to the adopter. Ask each zombie.
            self.current = still_zombies(self.zombies, self.starts)
            if self._alive():
                return len(self.current), True
        self.current = still_zombies(self.zombies, self.starts)
        return len(self.current), False

    def send(self, sig: int) -> SendResult:
        res = send_signal_safely(
            self.target, sig, self.current, child_starts=self.starts, use_pidfd=self.use_pidfd
        )
        name = signal.Signals(sig).name
        self.log(
            f"{name} -> {self.target.pid} ({self.target.name}) via {res.via}: {res.status.value}"
            + (f" ({res.detail})" if res.detail else "")
        )
        return res

    def adopter(self) -> str | None:
        for pid in still_zombies(self.current[:1], self.starts):
            zombie = read_identity(pid)
            if zombie is not None:
                ident = read_identity(zombie.ppid)
                return f"{zombie.ppid} ({ident.name if ident else '?'})"
        return None


def still_zombies(pids: Iterable[int], starts: Mapping[int, float]) -> list[int]:
    """The pids that still name the planned zombies: still Z, with the same start time.

    Matched by pid and start time: once a zombie is reaped its pid may name a new
    process, which may itself end up a zombie (of the adopter, or of anyone).
    """
    out = []
    for pid in pids:
        ident = read_identity(pid)
        if ident is None or not ident.is_zombie:
            continue
        start = starts.get(pid)
        if start is None or start == ident.starttime:
            out.append(pid)
    return sorted(out)


# --------------------------------------------------------------------------- results


@dataclass
class ParentResult:
    pid: int
    name: str
    zombies_before: int
    zombies_after: int
    actions: list[str]
    result: str
    reason: str
    sigchld_sent: int = 0
    adopter: str | None = None
    container: str | None = None
    stops_container: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "name": for_json(self.name),
            "zombies_before": self.zombies_before,
            "zombies_after": self.zombies_after,
            "actions": list(self.actions),
            "result": self.result,
            "reason": self.reason,
            "sigchld_sent": self.sigchld_sent,
            "adopter": self.adopter,
            "container": None if self.container is None else for_json(self.container),
            "stops_container": (
                None if self.stops_container is None else for_json(self.stops_container)
            ),
        }


@dataclass
class ReapReport:
    parents: list[ParentResult]
    dry_run: bool = False

    @property
    def reaped(self) -> int:
        return sum(max(p.zombies_before - p.zombies_after, 0) for p in self.parents)

    @property
    def remaining(self) -> int:
        return sum(p.zombies_after for p in self.parents)

    def exit_code(self) -> int:
        """0: every targeted zombie is gone; 4: permission was all that stopped us; else 1."""
        if self.dry_run:
            return EXIT_OK
        not_done = [p for p in self.parents if p.result != REAPED]
        if not not_done:
            return EXIT_OK
        if self.reaped == 0 and all(p.result == DENIED for p in not_done):
            return EXIT_PERMISSION
        return EXIT_CONDITION

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "parents": [p.as_dict() for p in self.parents],
            "reaped": self.reaped,
            "remaining": self.remaining,
        }
        if self.dry_run:
            out["dry_run"] = True
        return out


def _count_zombies(p: ParentPlan) -> int:
    return len(still_zombies(p.zombie_pids, p.zombie_starts))


def _not_acted_on(p: ParentPlan, after: int) -> ParentResult:
    """The row of a parent nothing is sent to: refused, or nothing to reap."""
    if p.refused is not None:
        row = ParentResult(p.pid, p.name, p.zombies, after, [], REFUSED, p.refused)
    else:
        result = REMAINING if after else REAPED
        row = ParentResult(
            p.pid, p.name, p.zombies, after, [], result, p.note or "no zombies to reap"
        )
    return _placed(row, p)


def _placed(row: ParentResult, p: ParentPlan) -> ParentResult:
    row.container = p.container
    row.stops_container = p.stops_container
    return row


def planned_report(plan: Plan) -> ReapReport:
    """What --dry-run shows: the plan in the shape of a report, nothing signalled."""
    rows = []
    for p in plan.parents:
        if not p.actionable:
            rows.append(_not_acted_on(p, p.zombies))
            continue
        steps = plan.steps(p)
        reason = "dry run: would send " + ", then ".join(steps)
        if p.end_refused is not None and plan.kill_parent:
            reason += f"; never SIGTERM or SIGKILL: it is {p.end_refused}"
        if p.stops_container is not None and stops_text(p.stops_container) not in reason:
            reason += f"; {stops_text(p.stops_container)}"
        if p.note:
            reason += f"; {p.note}"
        row = ParentResult(p.pid, p.name, p.zombies, p.zombies, list(steps), REMAINING, reason)
        rows.append(_placed(row, p))
    return ReapReport(rows, dry_run=True)


def execute(
    plan: Plan,
    *,
    use_pidfd: bool | None = None,
    log: Log = _no_log,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReapReport:
    """Act on every parent in the plan, one after another; verify each."""
    results = []
    for p in plan.parents:
        if not p.actionable or p.target is None:  # (actionable implies a target)
            # Counted again so that the report's "after" is a fact, not a copy.
            results.append(_not_acted_on(p, _count_zombies(p)))
            continue
        view = LiveParent(
            p.target, p.zombie_pids, starts=p.zombie_starts, use_pidfd=use_pidfd, log=log
        )
        out = Ladder(
            view,
            timeout=plan.timeout,
            kill_parent=plan.kill_parent,
            force=plan.force,
            clock=clock,
            sleep=sleep,
            end_refused=p.end_refused,
        ).run()
        after = _count_zombies(p)
        result = out.result
        if result == REAPED and after:
            result = REMAINING  # the last word is what /proc says now
        row = ParentResult(
            p.pid,
            p.name,
            p.zombies,
            after,
            out.actions,
            result,
            out.reason,
            out.sigchld_sent,
            out.adopter,
        )
        results.append(_placed(row, p))
    return ReapReport(results)
