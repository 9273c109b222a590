"""What `zombiectl watch` knows between two samples: which zombies are new, which were
reaped, how long each has been seen, and the history of the zombie count.

The tracker takes the processes of one sample and a timestamp and returns a `Sample`;
it never reads the clock or /proc itself, so its logic is tested with made-up samples.
The loop that drives it (`run_watch`) takes its clock and sleep as arguments for the
same reason.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from zombiectl.proc.age import zombie_age
from zombiectl.proc.limits import Limit
from zombiectl.proc.table import (
    ParentZombies,
    ProcInfo,
    Snapshot,
    children_of,
    count_states,
    descendants_of,
    is_zombie_state,
    read_proc,
    scan,
)
from zombiectl.untrusted import for_json

HISTORY = 120
RATE_WINDOW = 60.0  # seconds: the leak rate is measured over the last minute at most


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the watch started
    pid: int | None  # the watched pid; None for the whole system
    children: int  # processes in view (children, descendants, or the whole table)
    zombies: int
    states: dict[str, int]
    zombie_pids: list[int]
    new_zombies: list[int]
    reaped: list[int]
    zombie_age: dict[int, float]  # pid -> seconds seen as a zombie
    history: tuple[int, ...]
    zombie_info: dict[int, ProcInfo] = field(default_factory=dict)
    parents: list[ParentZombies] = field(default_factory=list)  # whole-system view only
    name: str = ""  # the watched process's name
    tree: bool = False  # the view holds all descendants, not only children
    # pid -> seconds since the process started: the upper bound of its time as a zombie
    # (the lower bound, zombie_age, counts from the sample that first saw it).
    zombie_max_age: dict[int, float] = field(default_factory=dict)
    # Zombies already there at the first sample: their time as a zombie is unknown.
    preexisting: frozenset[int] = frozenset()
    rate_per_min: float = 0.0  # new zombies per minute, gross, over the rate window
    headroom: Limit | None = None  # the limit with the fewest pids left

    def newest_first(self) -> list[int]:
        """Zombie pids, the most recent first: the ones a leak is making right now."""
        return sorted(self.zombie_pids, key=lambda pid: (self.zombie_age[pid], -pid))

    @property
    def seconds_left(self) -> float | None:
        """At this rate, seconds until the tightest limit is reached (None: no leak)."""
        if self.rate_per_min <= 0 or self.headroom is None:
            return None
        return self.headroom.left / self.rate_per_min * 60.0

    container: dict[str, object] | None = None  # the watched process's container (None: host)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "t": round(self.t, 3),
            "pid": self.pid,
            "children": self.children,
            "zombies": self.zombies,
            "states": self.states,
            "zombie_pids": self.zombie_pids,
            "new_zombies": self.new_zombies,
            "reaped": self.reaped,
            "rate_per_min": round(self.rate_per_min, 3),
        }
        if self.headroom is not None:
            out["limit"] = {
                "name": self.headroom.name,
                "max": self.headroom.limit,
                "used": self.headroom.used,
            }
            out["seconds_left"] = None if self.seconds_left is None else round(self.seconds_left, 1)
        if self.pid is not None:
            out["name"] = for_json(self.name)
            out["container"] = self.container
        else:
            out["parents"] = [g.as_dict(max_pids=20) for g in self.parents[:20]]
        return out


class Tracker:
    """Follows the set of zombies from one sample to the next."""

    def __init__(
        self,
        pid: int | None,
        started: float,
        history: int = HISTORY,
        tree: bool = False,
        container: dict[str, object] | None = None,
    ) -> None:
        self.pid = pid
        self.container = container
        self.started = started
        self.tree = tree
        self.first_seen: dict[int, float] = {}
        self.born: dict[int, float] = {}  # pid -> when it started, on our clock
        self.preexisting: frozenset[int] = frozenset()
        self.zombies: dict[int, ProcInfo] = {}  # as of the last sample
        self.history: deque[int] = deque(maxlen=history)
        self.arrivals: deque[tuple[float, int]] = deque()  # (sample time, new zombies)
        self.first_at: float | None = None
        self.samples = 0
        self.name = ""  # the watched process's name, as of the last sample

    def unknown_ages(self, procs: Iterable[ProcInfo]) -> list[int]:
        """The zombies whose start time the caller should look up for the next update."""
        return [p[0] for p in procs if is_zombie_state(p[2]) and p[0] not in self.born]

    def rate(self, now: float) -> float:
        """New zombies per minute over the last RATE_WINDOW seconds, or since the first
        sample while that is shorter (the first sample's zombies are not "new")."""
        assert self.first_at is not None
        start = max(self.first_at, now - RATE_WINDOW)
        while self.arrivals and self.arrivals[0][0] <= start:
            self.arrivals.popleft()
        if now <= start:
            return 0.0
        return sum(n for _, n in self.arrivals) / (now - start) * 60.0

    def update(
        self,
        procs: Iterable[ProcInfo],
        now: float,
        parents: list[ParentZombies] | None = None,
        name: str = "",
        ages: dict[int, float] | None = None,
        headroom: Limit | None = None,
    ) -> Sample:
        """One sample; `ages` gives seconds since the start of the zombies `unknown_ages`
        named (`proc.age.since_start`)."""
        procs = list(procs)
        zombies = {p[0]: p for p in procs if is_zombie_state(p[2])}
        previous = self.first_seen
        # The first sample has nothing to compare with: nothing is "new" in it.
        new = sorted(pid for pid in zombies if pid not in previous) if self.samples else []
        reaped = sorted(pid for pid in previous if pid not in zombies)
        self.first_seen = {pid: previous.get(pid, now) for pid in zombies}
        for pid, age in (ages or {}).items():
            self.born.setdefault(pid, now - age)
        self.born = {pid: t for pid, t in self.born.items() if pid in zombies}
        if self.first_at is None:
            self.first_at = now
            self.preexisting = frozenset(zombies)
        else:
            self.arrivals.append((now, len(new)))
        self.zombies = zombies
        self.name = name
        self.history.append(len(zombies))
        self.samples += 1
        zombie_pids = sorted(zombies)
        bounds = {
            pid: zombie_age(now, self.first_seen[pid], self.born.get(pid)) for pid in zombie_pids
        }
        return Sample(
            t=now - self.started,
            pid=self.pid,
            children=len(procs),
            zombies=len(zombies),
            states=dict(sorted(count_states(procs).items())),
            zombie_pids=zombie_pids,
            new_zombies=new,
            reaped=reaped,
            zombie_age={pid: bounds[pid][0] for pid in zombie_pids},
            history=tuple(self.history),
            zombie_info=zombies,
            parents=parents or [],
            name=name,
            tree=self.tree,
            zombie_max_age={
                pid: at_most for pid, (_, at_most) in bounds.items() if at_most is not None
            },
            preexisting=self.preexisting & frozenset(zombies),
            rate_per_min=self.rate(now),
            headroom=headroom,
            container=self.container,
        )


class Gone(Exception):
    """The watched process exited."""


@dataclass(frozen=True)
class Adopter:
    pid: int
    name: str
    zombies: int  # how many of the watched process's last zombies it now holds


@dataclass(frozen=True)
class Exited:
    """The end of a watch whose process exited: what became of its zombies."""

    pid: int
    name: str
    zombies: int  # zombies in the last sample
    adopters: list[Adopter]  # who holds them now (while they are still visible)
    gone: int  # of those, already reaped (or no longer visible)


def after_exit(pid: int, name: str, zombies: dict[int, ProcInfo]) -> Exited:
    """Where the watched process's last zombies went once it exited (init, a subreaper)."""
    held: dict[int, int] = {}
    gone = 0
    for zpid in zombies:
        info = read_proc(zpid)
        if info is None or not is_zombie_state(info.state) or info.ppid == pid:
            gone += info is None or not is_zombie_state(info.state)
            continue
        held[info.ppid] = held.get(info.ppid, 0) + 1
    adopters = []
    for ppid, n in sorted(held.items(), key=lambda kv: -kv[1]):
        parent = read_proc(ppid)
        adopters.append(Adopter(ppid, parent.name if parent is not None else "?", n))
    return Exited(pid, name, len(zombies), adopters, gone)


def sample_pid(
    pid: int, tree: bool, known_zombies: dict[int, ProcInfo] | None = None
) -> tuple[list[ProcInfo], str]:
    """The watched process's children (or descendants) and its name; Gone once it has exited."""
    me = read_proc(pid)
    if me is None or is_zombie_state(me.state):
        raise Gone(pid)
    procs = descendants_of(pid, known_zombies) if tree else children_of(pid, known_zombies)
    return procs, me.name


def container_of(pid: int) -> dict[str, object] | None:
    """The container pid is in, as `--json` writes it (None: the host); read once."""
    from zombiectl.proc.containers import Attributor

    c = Attributor().container_of(pid)
    return None if c is None else c.as_dict()


def sample_system() -> tuple[list[ProcInfo], list[ParentZombies]]:
    snap: Snapshot = scan()
    return list(snap.procs.values()), snap.zombies_by_parent()


def run_watch(
    take: Callable[[float], Sample],
    emit: Callable[[Sample], None],
    interval: float,
    count: int | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Sample every `interval` seconds on a fixed schedule until `count` samples are taken.

    `take(now)` may raise Gone. Returns the number of samples emitted. A slow tick does
    not shift the schedule of the ones after it; ticks missed entirely are skipped, not
    bunched together.
    """
    start = clock()
    n = 0
    while count is None or n < count:
        emit(take(clock()))
        n += 1
        if count is not None and n >= count:
            break
        now = clock()
        ticks = int((now - start) / interval) + 1
        sleep(max(0.0, start + ticks * interval - now))
    return n
