"""What `zombiectl list` reports: one scan, reduced to zombies by parent.

Plain classes rather than dataclasses: this module sits on the fast path of
`list --json`, where importing `dataclasses` (and with it `inspect`) costs more than
the rest of the start-up.
"""

from __future__ import annotations

from zombiectl.proc.table import ParentZombies, Snapshot, require_process, scan


class ListResult:
    __slots__ = ("parents", "pid", "processes", "scan_seconds", "zombies")

    def __init__(
        self,
        processes: int,
        zombies: int,
        parents: list[ParentZombies],
        scan_seconds: float,
        pid: int | None = None,
    ) -> None:
        self.processes = processes
        self.zombies = zombies
        self.parents = parents
        self.scan_seconds = scan_seconds
        self.pid = pid

    def as_dict(self) -> dict[str, object]:
        return {
            "processes": self.processes,
            "zombies": self.zombies,
            "parents": [g.as_dict() for g in self.parents],
            "scan_duration_seconds": round(self.scan_seconds, 6),
        }


def build_listing(snapshot: Snapshot, pid: int | None = None) -> ListResult:
    parents = snapshot.zombies_by_parent(only_parent=pid)
    return ListResult(
        processes=len(snapshot),
        zombies=sum(g.zombies for g in parents),
        parents=parents,
        scan_seconds=snapshot.duration,
        pid=pid,
    )


def list_zombies(pid: int | None = None) -> ListResult:
    """Scan once; with pid, only the zombies whose parent is pid (NoSuchProcess if none such)."""
    if pid is not None:
        require_process(pid)
    return build_listing(scan(), pid)


def exceeds(result: ListResult, max_zombies: int | None) -> bool:
    return max_zombies is not None and result.zombies > max_zombies
