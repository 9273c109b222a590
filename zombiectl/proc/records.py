"""The records of the process table, in one place: what zombiectl knows of a process.

Each is a tuple with named fields, written by hand rather than with
`typing.NamedTuple` or a dataclass: `list` builds one per zombie parent (and `watch` one
per child) on every scan, and on `list`'s start-up path importing typing costs about
4 ms and dataclasses about 16 ms (`python -X importtime`, on top of what `list --json`
imports anyway), as much as scanning a few thousand processes. Records that only slower
commands build are dataclasses where they are used (`limits.Limit`,
`containers.Container`, `identity.Target`).
"""

from __future__ import annotations

from operator import itemgetter

from zombiectl.untrusted import for_json

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true

ZOMBIE = "Z"
PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread


class ProcInfo(tuple):
    """(pid, ppid, state, name): what one line of ``/proc/PID/stat`` tells.

    A hand-written named tuple: one is built per process on every scan, and this is
    the cheapest object that still reads well (no dataclass or collections import on
    the fast path of ``list``).
    """

    __slots__ = ()

    def __new__(cls, pid: int, ppid: int, state: str, name: str) -> ProcInfo:
        return tuple.__new__(cls, (pid, ppid, state, name))

    # Typed for mypy; at run time each is a C-level itemgetter, the cheapest access.
    if TYPE_CHECKING:
        pid: int
        ppid: int
        state: str
        name: str
    else:
        pid = property(itemgetter(0))
        ppid = property(itemgetter(1))
        state = property(itemgetter(2))
        name = property(itemgetter(3))

    @property
    def is_zombie(self) -> bool:
        return is_zombie_state(self[2])

    def __repr__(self) -> str:
        return f"ProcInfo(pid={self[0]}, ppid={self[1]}, state={self[2]!r}, name={self[3]!r})"


def is_zombie_state(state: str) -> bool:
    """The one zombie test every command uses: state ``Z`` in ``/proc/PID/stat``."""
    return state == ZOMBIE


class ParentZombies(tuple):
    """A parent and the zombies it has not reaped: (pid, name, user, zombie_pids)."""

    __slots__ = ()

    def __new__(cls, pid: int, name: str, user: str, zombie_pids: list[int]) -> ParentZombies:
        return tuple.__new__(cls, (pid, name, user, zombie_pids))

    # Typed for mypy; at run time each is a C-level itemgetter, the cheapest access.
    if TYPE_CHECKING:
        pid: int
        name: str
        user: str
        zombie_pids: list[int]
    else:
        pid = property(itemgetter(0))
        name = property(itemgetter(1))
        user = property(itemgetter(2))
        zombie_pids = property(itemgetter(3))

    @property
    def zombies(self) -> int:
        return len(self[3])

    def as_dict(self, max_pids: int | None = None) -> dict[str, object]:
        pids = self[3] if max_pids is None else self[3][:max_pids]
        return {
            "pid": self[0],
            "name": for_json(self[1]),
            "user": self[2],
            "zombies": len(self[3]),
            "zombie_pids": pids,
        }


PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread


class ProcIdentity(tuple):
    """(pid, ppid, state, name, flags, starttime): who a pid is *now*.

    ``starttime`` (clock ticks after boot, field 22 of ``/proc/PID/stat``) tells two
    processes apart that had the same pid; ``flags`` (field 9) marks kernel threads.
    Where ``/proc`` is missing, psutil's create time stands in for ``starttime`` and
    ``flags`` is 0.
    """

    __slots__ = ()

    def __new__(
        cls, pid: int, ppid: int, state: str, name: str, flags: int, starttime: float
    ) -> ProcIdentity:
        return tuple.__new__(cls, (pid, ppid, state, name, flags, starttime))

    # Typed for mypy; at run time each is a C-level itemgetter, the cheapest access.
    if TYPE_CHECKING:
        pid: int
        ppid: int
        state: str
        name: str
        flags: int
        starttime: float
    else:
        pid = property(itemgetter(0))
        ppid = property(itemgetter(1))
        state = property(itemgetter(2))
        name = property(itemgetter(3))
        flags = property(itemgetter(4))
        starttime = property(itemgetter(5))

    @property
    def is_zombie(self) -> bool:
        return is_zombie_state(self[2])

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self[4] & PF_KTHREAD)
