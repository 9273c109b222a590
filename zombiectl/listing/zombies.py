"""What `zombiectl list` reports: one scan, reduced to zombies by parent.

Plain classes rather than dataclasses: this module sits on the fast path of
`list --json`, where importing `dataclasses` (and with it `inspect`) costs more than
the rest of the start-up.
"""

from __future__ import annotations

from zombiectl.proc.containers import Attributor, Container
from zombiectl.proc.table import ParentZombies, Snapshot, require_process, scan
from zombiectl.untrusted import for_json

BY = ("parent", "container")


class ContainerZombies:
    """The zombies of one container (None: the host) and its worst parent."""

    __slots__ = ("container", "parents", "worst", "zombies")

    def __init__(
        self, container: Container | None, zombies: int, parents: int, worst: ParentZombies
    ) -> None:
        self.container = container
        self.zombies = zombies
        self.parents = parents
        self.worst = worst

    def as_dict(self) -> dict[str, object]:
        return {
            "container": None if self.container is None else self.container.as_dict(),
            "zombies": self.zombies,
            "parents": self.parents,
            "worst_parent": {
                "pid": self.worst.pid,
                "name": for_json(self.worst.name),
                "zombies": self.worst.zombies,
            },
        }


class ContainerTotal:
    """Every zombie of one container id, and those its PID 1 holds."""

    __slots__ = ("container", "init_zombies", "zombies")

    def __init__(self, container: Container) -> None:
        self.container = container
        self.zombies = 0
        self.init_zombies = 0


class ListResult:
    __slots__ = (
        "by",
        "containers",
        "inits",
        "parents",
        "pid",
        "processes",
        "scan_seconds",
        "zombies",
    )

    def __init__(
        self,
        processes: int,
        zombies: int,
        parents: list[ParentZombies],
        scan_seconds: float,
        *,
        pid: int | None = None,
        containers: dict[int, Container | None] | None = None,
        inits: set[int] | None = None,
        by: str = "parent",
    ) -> None:
        self.processes = processes
        self.zombies = zombies
        self.parents = parents
        self.scan_seconds = scan_seconds
        self.pid = pid
        # Parent pid -> its container (None: the host); empty when not attributed.
        self.containers = containers if containers is not None else {}
        # Parents that are PID 1 of a namespace other than zombiectl's.
        self.inits = inits if inits is not None else set()
        self.by = by

    def container_of(self, pid: int) -> Container | None:
        return self.containers.get(pid)

    def by_container(self) -> list[ContainerZombies]:
        """One row per container (the host included), most zombies first."""
        groups: dict[str, list[ParentZombies]] = {}
        owner: dict[str, Container | None] = {}
        for g in self.parents:  # already biggest first: a group's first is its worst
            c = self.containers.get(g.pid)
            key = "" if c is None else c.key
            groups.setdefault(key, []).append(g)
            owner[key] = c
        rows = [
            ContainerZombies(owner[k], sum(g.zombies for g in gs), len(gs), gs[0])
            for k, gs in groups.items()
        ]
        rows.sort(key=lambda r: (-r.zombies, r.container is None, r.worst.pid))
        return rows

    def container_totals(self) -> list[ContainerTotal]:
        """One entry per container id holding zombies, with no top cut, sorted by id.

        Namespaces nested in one container share its id: their zombies, and those of
        their inits, count toward it; its pids are the outermost namespace's cgroup's.
        """
        totals: dict[str, ContainerTotal] = {}
        for g in self.parents:
            c = self.containers.get(g.pid)
            if c is None:
                continue
            total = totals.get(c.id)
            if total is None:
                total = totals[c.id] = ContainerTotal(c)
            elif c.own_cgroup and not total.container.own_cgroup:
                total.container = c
            total.zombies += g.zombies
            if g.pid == c.init_pid:
                total.init_zombies += g.zombies
        return [totals[k] for k in sorted(totals)]

    def as_dict(self) -> dict[str, object]:
        parents = []
        for g in self.parents:
            d = g.as_dict()
            c = self.containers.get(g.pid)
            d["container"] = None if c is None else c.as_dict()
            parents.append(d)
        out: dict[str, object] = {
            "processes": self.processes,
            "zombies": self.zombies,
            "parents": parents,
            "scan_duration_seconds": round(self.scan_seconds, 6),
        }
        if self.by == "container":
            out["containers"] = [r.as_dict() for r in self.by_container()]
        return out


def attribute(parents: list[ParentZombies]) -> tuple[dict[int, Container | None], set[int]]:
    """The container of each parent, and which parents are a namespace's PID 1.

    Reads /proc only for these parents (and, once per container, its init).
    """
    attributor = Attributor()
    containers = {g.pid: attributor.container_of(g.pid) for g in parents}
    attributor.finish()
    inits = {pid for pid, c in containers.items() if c is not None and c.init_pid == pid}
    if 1 in containers:  # our own namespace's PID 1 is an init too
        inits.add(1)
    return containers, inits


def build_listing(
    snapshot: Snapshot, pid: int | None = None, attributed: bool = True, by: str = "parent"
) -> ListResult:
    parents = snapshot.zombies_by_parent(only_parent=pid)
    containers, inits = attribute(parents) if attributed else ({}, set())
    return ListResult(
        processes=len(snapshot),
        zombies=sum(g.zombies for g in parents),
        parents=parents,
        scan_seconds=snapshot.duration,
        pid=pid,
        containers=containers,
        inits=inits,
        by=by,
    )


def list_zombies(pid: int | None = None, by: str = "parent") -> ListResult:
    """Scan once; with pid, only the zombies whose parent is pid (NoSuchProcess if none such)."""
    if pid is not None:
        require_process(pid)
    return build_listing(scan(), pid, by=by)


def exceeds(result: ListResult, max_zombies: int | None) -> bool:
    return max_zombies is not None and result.zombies > max_zombies
