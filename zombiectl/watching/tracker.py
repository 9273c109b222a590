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
        }
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
        container: dict[str, object] | None = None,
    ) -> None:
        self.pid = pid
        self.container = container
        self.started = started
        self.first_seen: dict[int, float] = {}
        self.zombies: dict[int, ProcInfo] = {}  # as of the last sample
        self.history: deque[int] = deque(maxlen=history)
        self.samples = 0

    def update(
        self,
        procs: Iterable[ProcInfo],
        now: float,
        parents: list[ParentZombies] | None = None,
        name: str = "",
    ) -> Sample:
        procs = list(procs)
        zombies = {p[0]: p for p in procs if is_zombie_state(p[2])}
        previous = self.first_seen
        # The first sample has nothing to compare with: nothing is "new" in it.
        new = sorted(pid for pid in zombies if pid not in previous) if self.samples else []
        reaped = sorted(pid for pid in previous if pid not in zombies)
        self.first_seen = {pid: previous.get(pid, now) for pid in zombies}
        self.zombies = zombies
        self.history.append(len(zombies))
        self.samples += 1
        zombie_pids = sorted(zombies)
        return Sample(
            t=now - self.started,
            pid=self.pid,
            children=len(procs),
            zombies=len(zombies),
            states=dict(sorted(count_states(procs).items())),
            zombie_pids=zombie_pids,
            new_zombies=new,
            reaped=reaped,
            zombie_age={pid: now - self.first_seen[pid] for pid in zombie_pids},
            history=tuple(self.history),
            zombie_info=zombies,
            parents=parents or [],
            name=name,
            container=self.container,
        )


class Gone(Exception):
    """The watched process exited."""


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
