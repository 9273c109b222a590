"""The report of one check and its verdict: pass unless a criterion fails.

`grade()` takes the facts the session gathered (`Facts`) and the limits (`Limits`) and
returns a `Report`: one `Criterion` per line of the JUnit file, the reasons, the verdict.
Pure data; the renderers in `zombiectl.check.render` turn it into text, JSON and JUnit.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

CRITERIA = ("zombies at end", "zombie age", "replies", "listening", "process")


@dataclass(frozen=True)
class Leaker:
    pid: int
    name: str
    cmdline: str
    zombies: int


@dataclass(frozen=True)
class Facts:
    """What was observed. exit_status is 128+N after signal N; None while still running."""

    command: list[str]
    pid: int
    mode: str  # "run" (-- CMD) or "pid" (--pid P)
    exit_status: int | None
    seconds: float
    resolution_ms: float | None
    children: int = 0
    max_zombies: int = 0
    zombies_before: int = 0
    zombies_at_end: int = 0
    orphans_adopted: int = 0
    collected_by_parent: int = 0
    collected_by_zombiectl: int = 0
    lifetimes_ms: list[float] = field(default_factory=list)
    oldest_zombie_ms: float | None = None  # collected or not
    leakers: list[Leaker] = field(default_factory=list)
    tcp: bool = False
    listened: bool = False
    clients: int = 0
    echoes_ok: int = 0
    echoes_failed: int = 0
    client_seconds: float | None = None  # how long the client phase took
    failures: dict[str, int] = field(default_factory=dict)
    crashed_by: int | None = None  # a signal that ended CMD which the check did not send
    ended_by_check: bool = False  # the check signalled CMD to end it (--tcp, --duration)
    not_started: str | None = None  # why CMD could not start (127/126)
    interrupted_by: int | None = None
    timed_out: bool = False  # --timeout passed before the check could finish
    timeout_s: float | None = None
    still_running_after_settle: int = 0  # children of the client phase alive at --settle-max
    processes_ended_by_check: int = 0  # members alive when the check ended the tree
    not_reaped_by_parent: int = 0  # zombies whose live parent never collected them
    slowest_parent_reap_ms: float | None = None  # the longest a parent took to reap one
    stdout_text: str = ""  # CMD's output, capped (head and tail)
    stderr_text: str = ""
    stuck: list[str] = field(default_factory=list)  # members the check could not end


@dataclass(frozen=True)
class Limits:
    max_zombies: int = 0
    max_zombie_age: float | None = None  # seconds
    require_exit_zero: bool = False


@dataclass(frozen=True)
class Criterion:
    name: str
    failure: str | None = None  # the reason, when it failed
    skipped: str | None = None  # why it does not apply

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True)
class Report:
    facts: Facts
    limits: Limits
    criteria: list[Criterion]

    @property
    def reasons(self) -> list[str]:
        return [c.failure for c in self.criteria if c.failure is not None]

    @property
    def verdict(self) -> str:
        return "fail" if self.reasons else "pass"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _zombies_at_end(f: Facts, lim: Limits) -> Criterion:
    if f.not_started:
        return Criterion(CRITERIA[0], skipped="the command did not start")
    if f.zombies_at_end <= lim.max_zombies:
        if f.not_reaped_by_parent > lim.max_zombies:
            return Criterion(
                CRITERIA[0],
                failure=f"{f.not_reaped_by_parent} zombie(s) were never reaped by their parent"
                f" (zombiectl collected them; at most {lim.max_zombies} allowed)",
            )
        return Criterion(CRITERIA[0])
    who = ", ".join(f"{lk.name} (pid {lk.pid}) holds {lk.zombies}" for lk in f.leakers[:5])
    when = f"after {f.clients} connections " if f.tcp else ""
    text = (
        f"{when}the tree holds {f.zombies_at_end} zombie(s) at the end"
        f" (at most {lim.max_zombies} allowed)"
    )
    return Criterion(CRITERIA[0], failure=f"{text}: {who}" if who else text)


def _zombie_age(f: Facts, lim: Limits) -> Criterion:
    if lim.max_zombie_age is None:
        return Criterion(CRITERIA[1], skipped="no --max-zombie-age")
    oldest = f.oldest_zombie_ms
    if oldest is None or oldest <= lim.max_zombie_age * 1000:
        return Criterion(CRITERIA[1])
    return Criterion(
        CRITERIA[1],
        failure=f"a zombie lived {oldest / 1000:.3f} s (at most {lim.max_zombie_age:g} s allowed)",
    )


def _replies(f: Facts) -> Criterion:
    if not f.tcp:
        return Criterion(CRITERIA[2], skipped="no --tcp")
    if not f.listened:
        return Criterion(CRITERIA[2], skipped="the server never listened")
    if f.echoes_failed == 0:
        return Criterion(CRITERIA[2])
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(f.failures.items()))
    return Criterion(
        CRITERIA[2], failure=f"{f.echoes_failed} of {f.clients} replies failed ({why})"
    )


def _listening(f: Facts) -> Criterion:
    if not f.tcp:
        return Criterion(CRITERIA[3], skipped="no --tcp")
    if f.listened:
        return Criterion(CRITERIA[3])
    if f.not_started:
        return Criterion(CRITERIA[3], failure="the server never listened: it did not start")
    return Criterion(CRITERIA[3], failure="the server never listened on the port")


def _process(f: Facts, lim: Limits) -> Criterion:
    if f.not_started:
        return Criterion(CRITERIA[4], failure=f.not_started)
    if f.timed_out:
        limit = "" if f.timeout_s is None else f" ({f.timeout_s:g} s)"
        why = f"timeout: the check ran past --timeout{limit}{_stuck(f)}"
        return Criterion(CRITERIA[4], failure=why)
    if f.interrupted_by is not None:
        why = f"the check was interrupted by {_signame(f.interrupted_by)} before it finished"
        why += _stuck(f)
        return Criterion(CRITERIA[4], failure=why)
    if f.crashed_by is not None:
        why = f"the command crashed: killed by {_signame(f.crashed_by)}"
        return Criterion(CRITERIA[4], failure=why)
    if f.stuck:
        return Criterion(CRITERIA[4], failure="the check" + _stuck(f)[2:])
    graded = f.mode == "run" and not f.ended_by_check
    if lim.require_exit_zero and graded and f.exit_status not in (0, None):
        return Criterion(CRITERIA[4], failure=f"the command exited with status {f.exit_status}")
    return Criterion(CRITERIA[4])


def _stuck(f: Facts) -> str:
    return "; could not end " + ", ".join(f.stuck) if f.stuck else ""


def grade(facts: Facts, limits: Limits) -> Report:
    criteria = [
        _zombies_at_end(facts, limits),
        _zombie_age(facts, limits),
        _replies(facts),
        _listening(facts),
        _process(facts, limits),
    ]
    return Report(facts, limits, criteria)
