"""The report of one check: its criteria, its verdict (pass, fail or error) and its hints.

`grade()` takes the facts the session gathered (`Facts`) and the limits (`Limits`) and
returns a `Report`: one `Criterion` per line of the JUnit file, the verdict, and the
hints that tell a student what to fix. Pure data; the renderers in
`zombiectl.check.render` turn it into text, JSON, JUnit and Gradescope's results.

Verdicts: ``fail`` is the program's doing (a student's bug); ``error`` means the check
could not be carried out (CMD did not start, the port was already taken by another
program, zombiectl ran out of a resource), so it says nothing of the program's grade.
Each criterion's message is the same from run to run; what changes (pids) is its
``detail``.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

ZOMBIES_AT_END = "zombies at end"
REAPED = "reaped by parent"
AGE = "zombie age"
REPLIES = "replies"
LISTENING = "listening"
PROCESS = "process"
ENVIRONMENT = "environment"  # only present when the check could not be carried out
CRITERIA = (ZOMBIES_AT_END, REAPED, AGE, REPLIES, LISTENING, PROCESS)

PASS, FAIL, ERROR = "pass", "fail", "error"
SLOW_REAP_MS = 100.0  # a zombie its parent left longer than this gets the slow-reap hint
STDERR_LINES = 5  # lines of CMD's stderr quoted by the exit-before-listen hint


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
    # What the grading and the hints need besides.
    port: int | None = None  # --tcp PORT
    tree_ports: list[int] = field(default_factory=list)  # where the tree listened, if not found
    replies_without_eof: int = 0  # right replies whose connection the server never closed
    served_before_exit: int | None = None  # right replies when CMD ended during the clients
    environment: str | None = None  # why the check could not be carried out
    environment_pid: int | None = None  # the process outside the tree that was in the way


@dataclass(frozen=True)
class Limits:
    max_zombies: int = 0
    max_zombie_age: float | None = None  # seconds
    require_exit_zero: bool = False


@dataclass(frozen=True)
class Criterion:
    """One line of the grade. failure/error: a message stable across runs; detail: the
    same with what changes from run to run (pids), for people."""

    name: str
    failure: str | None = None  # the program failed it
    skipped: str | None = None  # why it does not apply
    error: str | None = None  # why it could not be judged
    detail: str | None = None
    by_option: bool = False  # skipped because the options leave it out, for every program

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        if self.failure is not None:
            return "failed"
        return "skipped" if self.skipped is not None else "passed"

    @property
    def reason(self) -> str | None:
        """What the text report and the JSON say: the message, with its detail."""
        text = self.failure if self.failure is not None else self.error
        if text is None or not self.detail:
            return text
        return f"{text}: {self.detail}"


@dataclass(frozen=True)
class Hint:
    code: str  # stable: no-wait, partial-reap, wrong-port, ... (docs/reference.md)
    text: str


@dataclass(frozen=True)
class Report:
    facts: Facts
    limits: Limits
    criteria: list[Criterion]
    hints: list[Hint] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.criteria if c.reason is not None]

    @property
    def verdict(self) -> str:
        if any(c.error is not None for c in self.criteria):
            return ERROR
        return FAIL if any(c.failed for c in self.criteria) else PASS


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


# --------------------------------------------------------------------------- criteria


def _unexercised(f: Facts) -> str | None:
    """Why the zombie criteria say nothing: with --tcp, no client was ever served."""
    if f.tcp and f.echoes_ok == 0:
        return "no client was served, so no handler was exercised"
    return None


def _zombies_at_end(f: Facts, lim: Limits) -> Criterion:
    if f.zombies_at_end <= lim.max_zombies:
        return Criterion(ZOMBIES_AT_END, skipped=_unexercised(f))
    who = ", ".join(f"{lk.name} (pid {lk.pid}) holds {lk.zombies}" for lk in f.leakers[:5])
    when = f"after {f.clients} connections " if f.tcp else ""
    text = (
        f"{when}the tree holds {f.zombies_at_end} zombie(s) at the end"
        f" (at most {lim.max_zombies} allowed)"
    )
    return Criterion(ZOMBIES_AT_END, failure=text, detail=who or None)


def _reaped(f: Facts) -> Criterion:
    if f.not_reaped_by_parent == 0:
        return Criterion(REAPED, skipped=_unexercised(f))
    text = (
        f"{f.not_reaped_by_parent} zombie(s) were never reaped by their parent"
        " (zombiectl collected them while the parent still ran)"
    )
    return Criterion(REAPED, failure=text)


def _zombie_age(f: Facts, lim: Limits) -> Criterion:
    if lim.max_zombie_age is None:
        return Criterion(AGE, skipped="no --max-zombie-age", by_option=True)
    oldest = f.oldest_zombie_ms
    if oldest is None or oldest <= lim.max_zombie_age * 1000:
        return Criterion(AGE, skipped=_unexercised(f))
    return Criterion(
        AGE,
        failure=f"a zombie lived longer than the {lim.max_zombie_age:g} s allowed",
        detail=f"the oldest lived {oldest / 1000:.3f} s",
    )


def _replies(f: Facts) -> Criterion:
    if not f.tcp:
        return Criterion(REPLIES, skipped="no --tcp", by_option=True)
    if not f.listened:
        return Criterion(REPLIES, skipped="the server never listened")
    if f.clients == 0:
        return Criterion(REPLIES, skipped="no client was run")
    if f.echoes_failed == 0:
        return Criterion(REPLIES)
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(f.failures.items()))
    return Criterion(REPLIES, failure=f"{f.echoes_failed} of {f.clients} replies failed ({why})")


def _listening(f: Facts) -> Criterion:
    if not f.tcp:
        return Criterion(LISTENING, skipped="no --tcp", by_option=True)
    if f.listened:
        return Criterion(LISTENING)
    return Criterion(LISTENING, failure="the server never listened on the port")


def _process(f: Facts, lim: Limits) -> Criterion:
    if f.timed_out:
        limit = "" if f.timeout_s is None else f" ({f.timeout_s:g} s)"
        why = f"timeout: the check ran past --timeout{limit}{_stuck(f)}"
        return Criterion(PROCESS, failure=why)
    if f.interrupted_by is not None:
        why = f"the check was interrupted by {signame(f.interrupted_by)} before it finished"
        why += _stuck(f)
        return Criterion(PROCESS, failure=why)
    if f.crashed_by is not None:
        why = f"the command crashed: killed by {signame(f.crashed_by)}"
        return Criterion(PROCESS, failure=why)
    if f.stuck:
        return Criterion(PROCESS, failure="the check" + _stuck(f)[2:])
    graded = f.mode == "run" and not f.ended_by_check
    if lim.require_exit_zero and graded and f.exit_status not in (0, None):
        return Criterion(PROCESS, failure=f"the command exited with status {f.exit_status}")
    return Criterion(PROCESS)


def _not_carried_out(f: Facts) -> list[Criterion]:
    """The criteria of a check that could not be carried out: one error, the rest skipped."""
    if f.not_started:
        skip = "the command did not start"
        first = Criterion(PROCESS, error=f.not_started)
    else:
        skip = "the check could not be carried out"
        first = Criterion(ENVIRONMENT, error=f.environment)
    rest = [Criterion(name, skipped=skip) for name in CRITERIA if name != first.name]
    return [first, *rest]


def _stuck(f: Facts) -> str:
    return "; could not end " + ", ".join(f.stuck) if f.stuck else ""


def grade(facts: Facts, limits: Limits) -> Report:
    if facts.not_started or facts.environment:
        return Report(facts, limits, _not_carried_out(facts), hints(facts, limits))
    criteria = [
        _zombies_at_end(facts, limits),
        _reaped(facts),
        _zombie_age(facts, limits),
        _replies(facts),
        _listening(facts),
        _process(facts, limits),
    ]
    return Report(facts, limits, criteria, hints(facts, limits))


def could_not_check(command: list[str], why: str, port: int | None, limits: Limits) -> Report:
    """The report of a check that zombiectl itself could not carry out (a resource limit)."""
    facts = Facts(
        command=command,
        pid=0,
        mode="run",
        exit_status=None,
        seconds=0.0,
        resolution_ms=None,
        tcp=port is not None,
        port=port,
        environment=why,
    )
    return grade(facts, limits)


# --------------------------------------------------------------------------- hints


def hints(f: Facts, lim: Limits) -> list[Hint]:
    """What to fix, in the order a student should read it; none for a clean run."""
    if f.not_started or f.environment:
        return []
    found = [
        _reap_hint(f, lim),
        _port_hint(f),
        _exit_hint(f),
        _close_hint(f),
        _crash_hint(f),
        _slow_reap_hint(f),
        _slow_exit_hint(f),
    ]
    return [h for h in found if h is not None]


def _reap_hint(f: Facts, lim: Limits) -> Hint | None:
    left = f.zombies_at_end > lim.max_zombies or f.not_reaped_by_parent > 0
    if not left:
        return None
    if f.collected_by_parent == 0:
        return Hint(
            "no-wait",
            "the parent never collected a child: reap them in a SIGCHLD handler"
            " (waitpid(-1, &status, WNOHANG) in a loop) or set SIGCHLD to SIG_IGN",
        )
    return Hint(
        "partial-reap",
        f"the parent collected {f.collected_by_parent} child(ren) but left others:"
        " one SIGCHLD can stand for several exits, so loop"
        " waitpid(-1, &status, WNOHANG) until it returns 0, not one wait() per signal",
    )


def byte_swapped(port: int) -> int:
    """The port a server listens on when it forgot htons(): its two bytes swapped."""
    return ((port & 0xFF) << 8) | (port >> 8)


def _port_hint(f: Facts) -> Hint | None:
    if not f.tcp or f.listened or f.port is None or f.port in f.tree_ports:
        return None
    others = [p for p in f.tree_ports if p != f.port]
    if not others:
        return None
    swapped = byte_swapped(f.port)
    if swapped in others:
        return Hint(
            "wrong-port",
            f"the server listens on port {swapped}, which is {f.port} with its two bytes"
            " swapped: convert the port with htons() before bind()",
        )
    ports = ", ".join(str(p) for p in others[:5])
    return Hint("wrong-port", f"the server listens on port {ports}, not on {f.port}")


def _exit_hint(f: Facts) -> Hint | None:
    if not f.tcp or f.listened or f.mode != "run" or f.exit_status is None or f.ended_by_check:
        return None
    if f.port in f.tree_ports:
        return None  # a daemon it left behind listens
    if f.crashed_by is not None:
        how = f"was killed by {signame(f.crashed_by)}"
    else:
        how = f"exited with status {f.exit_status}"
    text = f"the command {how} before it listened on port {f.port}"
    tail = _last_lines(f.stderr_text, STDERR_LINES)
    if tail:
        text += "; the end of its stderr:\n" + tail
    return Hint("exit-before-listen", text)


def _last_lines(text: str, n: int) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def _close_hint(f: Facts) -> Hint | None:
    if f.replies_without_eof == 0 or f.echoes_ok == 0:
        return None
    return Hint(
        "no-close",
        f"{f.replies_without_eof} of {f.echoes_ok} replies arrived but the connection"
        " stayed open: the parent must close(connfd) after fork(), or the client never"
        " sees the end of the reply",
    )


def _crash_hint(f: Facts) -> Hint | None:
    if f.crashed_by is None:
        return None
    text = f"the command was killed by {signame(f.crashed_by)}"
    if f.tcp and f.served_before_exit is not None:
        text += f" after {f.served_before_exit} client(s) had been served"
    return Hint("crash", text)


def _slow_reap_hint(f: Facts) -> Hint | None:
    slowest = f.slowest_parent_reap_ms
    if slowest is None or slowest <= SLOW_REAP_MS:
        return None
    return Hint(
        "slow-reap",
        f"a zombie waited {slowest:.0f} ms before its parent reaped it: reap when"
        " SIGCHLD arrives, not only when the next connection comes",
    )


def _slow_exit_hint(f: Facts) -> Hint | None:
    if f.still_running_after_settle == 0:
        return None
    return Hint(
        "slow-exit",
        f"{f.still_running_after_settle} handler(s) still ran after the clients had"
        " finished and the settle time was over",
    )
