"""How long a leak can go on: the limits that zombies use up.

Every zombie holds a pid until it is reaped. Three limits stop fork() when pids run out:
the kernel's `pid_max` and `threads-max` (both count every task, thread or process) and
the `pids.max` of the watched process's cgroup (and of every cgroup above it; v2 and
v1). `headroom()` returns the tightest; `watch` divides it by the leak rate.

Everything here reads kernel files only (/proc, the cgroup file systems, found through
/proc/self/mountinfo): no path comes from another user, and cgroup files are opened
without following links and parsed as ASCII digits or "max".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zombiectl.proc.files import PROC, cat


@dataclass(frozen=True)
class Limit:
    name: str  # "pid_max", "threads-max", "pids.max (cgroup /a/b)"
    limit: int
    used: int

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) < 20:
        return int(text)
    return None


def tasks_in_use(proc: str = PROC) -> int | None:
    """Every task on the system (threads included): the 4th field of /proc/loadavg."""
    text = cat(f"{proc}/loadavg")
    if text is None:
        return None
    try:
        return int(text.split()[3].split("/")[1])
    except (IndexError, ValueError):
        return None


def kernel_limits(proc: str = PROC) -> list[Limit]:
    used = tasks_in_use(proc)
    if used is None:
        return []
    out = []
    for name, path in (
        ("pid_max", "sys/kernel/pid_max"),
        ("threads-max", "sys/kernel/threads-max"),
    ):
        n = _number(cat(f"{proc}/{path}"))
        if n is not None:
            out.append(Limit(name, n, used))
    return out


def pids_mounts(mountinfo: str) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """((root, mount point) of cgroup2, (root, mount point) of the v1 pids hierarchy)."""
    v2 = v1 = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, point = fields[3], fields[4]
        if rfields[0] == "cgroup2" and v2 is None:
            v2 = (root, point)
        elif rfields[0] == "cgroup" and "pids" in rfields[2].split(",") and v1 is None:
            v1 = (root, point)
    return v2, v1


def cgroup_paths(cgroup_file: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 pids path) of a process, from its /proc/PID/cgroup."""
    v2 = v1 = None
    for line in cgroup_file.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "pids" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _pids_limits(mount: tuple[str, str], path: str, used_file: str) -> list[Limit]:
    """pids.max of the cgroup at `path` and of each one above it that sets a limit."""
    root, point = mount
    rel = path[len(root) :] if root != "/" and path.startswith(root) else path
    out = []
    parts = [p for p in rel.split("/") if p and p not in (".", "..")]
    for depth in range(len(parts), -1, -1):
        sub = "/" + "/".join(parts[:depth])
        directory = os.path.join(point, *parts[:depth])
        limit = _number(cat(os.path.join(directory, "pids.max")))
        used = _number(cat(os.path.join(directory, used_file)))
        if limit is not None and used is not None:
            out.append(Limit(f"pids.max of cgroup {sub}", limit, used))
    return out


def cgroup_limits(pid: int, proc: str = PROC) -> list[Limit]:
    text = cat(f"{proc}/{pid}/cgroup", 65536)
    mountinfo = cat(f"{proc}/self/mountinfo", 1 << 20)
    if text is None or mountinfo is None:
        return []
    v2_path, v1_path = cgroup_paths(text)
    v2_mount, v1_mount = pids_mounts(mountinfo)
    out: list[Limit] = []
    if v2_path is not None and v2_mount is not None:
        out += _pids_limits(v2_mount, v2_path, "pids.current")
    if v1_path is not None and v1_mount is not None:
        out += _pids_limits(v1_mount, v1_path, "pids.current")
    return out


def headroom(pid: int | None, proc: str = PROC) -> Limit | None:
    """The limit with the fewest pids left: for the whole system, or for pid's cgroup."""
    limits = kernel_limits(proc)
    if pid is not None:
        limits += cgroup_limits(pid, proc)
    return min(limits, key=lambda lim: lim.left, default=None)
