"""`zombiectl doctor --containers`: does each container's PID 1 reap orphans?

Each container's PID 1 is looked at twice, `timeout` seconds apart, and judged by the
first row of this table that applies:

1. it holds a zombie that was there at both looks (same pid, same start time): it does
   not reap (`reaps` false);
2. it is a known reaping init, by executable or command line (tini, dumb-init,
   catatonit, docker-init, `zombiectl run`, s6-svscan, runit, systemd): true;
3. otherwise unknown (None). A caught SIGCHLD proves nothing: node and java catch it
   and still never reap the orphans they adopt.

Nothing here prints; `zombiectl.render.containers` renders the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc.containers import Container, all_containers, known_init, read_argv, read_exe
from zombiectl.proc.table import children_of, read_identity
from zombiectl.untrusted import for_json

DEFAULT_CONTAINERS_TIMEOUT = 2.0
INIT_REAPS = (
    "zombiectl_container_init_reaps",
    "Whether a container's PID 1 was seen to reap the orphans it adopts (1) or not (0), "
    "by `zombiectl doctor --containers`; no series when it could not tell.",
)


class InitAudit:
    """One container's PID 1 and the verdict on it."""

    __slots__ = ("container", "evidence", "init", "reaps", "zombies")

    def __init__(
        self, container: Container, init: str, reaps: bool | None, evidence: str, zombies: int
    ) -> None:
        self.container = container
        self.init = init
        self.reaps = reaps
        self.evidence = evidence
        self.zombies = zombies

    def as_dict(self) -> dict[str, object]:
        c = self.container.as_dict()
        return {
            "id": c["id"],
            "runtime": c["runtime"],
            "pod": c["pod"],
            "pidns": c["pidns"],
            "init_pid": c["init_pid"],
            "init": for_json(self.init),
            "cgroup": c["cgroup"],
            "reaps": self.reaps,
            "evidence": self.evidence,
            "zombies": self.zombies,
        }


class ContainersReport:
    __slots__ = ("audits", "timeout")

    def __init__(self, audits: list[InitAudit], timeout: float) -> None:
        self.audits = audits
        self.timeout = timeout

    @property
    def bad(self) -> bool:
        """Some PID 1 was seen not to reap."""
        return any(a.reaps is False for a in self.audits)

    def as_dict(self) -> dict[str, object]:
        return {"timeout": self.timeout, "containers": [a.as_dict() for a in self.audits]}

    def prometheus(self) -> str:
        """zombiectl_container_init_reaps per container id: 1, 0, no series when unknown.

        Namespaces nested in one container share its id: any init seen not to reap
        makes it 0.
        """
        from zombiectl.render.text import container_labels

        verdicts: dict[str, tuple[InitAudit, int]] = {}
        for a in self.audits:
            if a.reaps is None:
                continue
            value = int(a.reaps)
            known = verdicts.get(a.container.id)
            if known is None or value < known[1]:
                verdicts[a.container.id] = (a, value)
        lines = [f"# HELP {INIT_REAPS[0]} {INIT_REAPS[1]}", f"# TYPE {INIT_REAPS[0]} gauge"]
        for cid in sorted(verdicts):
            a, value = verdicts[cid]
            lines.append(f"{INIT_REAPS[0]}{{{container_labels(a.container)}}} {value}")
        return "\n".join(lines) + "\n"


def verdict(
    held: list[int], now: int, known: str | None, timeout: float
) -> tuple[bool | None, str]:
    """(reaps, evidence) by the table in this module's docstring.

    held: zombie children of PID 1 seen at both looks; now: its zombie children at the
    second look; known: the reaping init it was recognised as, if any.
    """
    if held:
        pids = " ".join(str(p) for p in held[:8]) + (" …" if len(held) > 8 else "")
        return False, (
            f"PID 1 held {len(held)} zombie(s) at both looks {timeout:g} s apart "
            f"(pids {pids}): it does not reap the orphans it adopts"
        )
    if known is not None:
        seen = f"{now} zombie(s) at the second look, none" if now else "no zombie"
        return True, f"PID 1 is {known}, a reaping init; {seen} held across both looks"
    return None, (
        f"no zombie held across two looks {timeout:g} s apart, but PID 1 is not a known "
        "reaping init: it may never have adopted an orphan (a caught SIGCHLD proves nothing)"
    )


# --------------------------------------------------------------------------- reading


def _zombies(pid: int) -> dict[int, float]:
    """pid's zombie children now: pid -> start time (empty when pid is gone)."""
    out: dict[int, float] = {}
    try:
        kids = children_of(pid)
    except (NoSuchProcess, PermissionDenied):  # gone or hidden since it was found: nothing held
        return out
    for k in kids:
        if k.is_zombie:
            ident = read_identity(k.pid)
            if ident is not None and ident.ppid == pid:
                out[k.pid] = ident.starttime
    return out


def _name(pid: int) -> str:
    ident = read_identity(pid)
    return ident.name if ident is not None else "?"


def audit_containers(
    timeout: float = DEFAULT_CONTAINERS_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    find: Callable[[], list[Container]] = all_containers,
) -> ContainersReport:
    """Look at every container's PID 1 twice, timeout apart, and judge each."""
    containers = find()
    first = {c.init_pid: _zombies(c.init_pid) for c in containers}
    if containers:
        sleep(timeout)
    audits = []
    for c in containers:
        second = _zombies(c.init_pid)
        before = first[c.init_pid]
        held = sorted(p for p, start in second.items() if before.get(p) == start)
        known = known_init(read_exe(c.init_pid), read_argv(c.init_pid))
        reaps, evidence = verdict(held, len(second), known, timeout)
        audits.append(InitAudit(c, _name(c.init_pid), reaps, evidence, len(second)))
    return ContainersReport(audits, timeout)
