"""`zombiectl doctor --containers`: does each container's PID 1 reap orphans?

Each container's PID 1 is looked at twice, `timeout` seconds apart (with `--probe`, each
is also handed one orphan: `zombiectl.doctor.probe`), and judged by the first row of
this table that applies:

1. the probe's orphan: reaped within 1 s, "reaps"; later within the timeout, "slow";
   not within it, "never";
2. it holds a zombie that was there at both looks (same pid, same start time) and none
   of the first look's zombies went: "never" within the window (`reaps` false);
3. a zombie it held at the first look was reaped by the second: "reaps" (or "slow"
   when it also held one across both looks);
4. its executable is, byte for byte, a reaping init installed on the host (tini,
   dumb-init, catatonit, docker-init): "reaps";
5. otherwise "unknown" (`reaps` null). A name proves nothing: a process chooses its own
   (`exec -a tini sleep`), so a name alone only gives `init_guess`; nor does a caught
   SIGCHLD: node and java catch it and still never reap the orphans they adopt.

`reaps` is true for "reaps" and "slow". Nothing here prints;
`zombiectl.doctor.render_containers` renders the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from zombiectl.doctor.probe import ProbeResult, probe
from zombiectl.errors import EXIT_NO_PROCESS, NoSuchProcess, PermissionDenied, ZombiectlError
from zombiectl.proc.containers import Container, all_containers, known_init
from zombiectl.proc.identity import read_identity
from zombiectl.proc.table import children_of, exe_path, read_argv, read_exe
from zombiectl.untrusted import display, for_json

DEFAULT_CONTAINERS_TIMEOUT = 2.0
REAPS: dict[str, bool | None] = {"reaps": True, "slow": True, "never": False, "unknown": None}
INIT_REAPS = (
    "zombiectl_container_init_reaps",
    "Whether a container's PID 1 was seen to reap the orphans it adopts (1) or not (0), "
    "by `zombiectl doctor --containers`; no series when it could not tell.",
)


class InitAudit:
    """One container's PID 1 and the verdict on it."""

    __slots__ = (
        "container",
        "evidence",
        "init",
        "init_guess",
        "init_zombies",
        "probe",
        "verdict",
        "zombies",
    )

    def __init__(
        self,
        container: Container,
        init: str,
        verdict: str,
        evidence: str,
        zombies: int,
        init_zombies: int = 0,
        init_guess: str | None = None,
        probe: ProbeResult | None = None,
    ) -> None:
        self.container = container
        self.init = init
        self.verdict = verdict
        self.evidence = evidence
        self.zombies = zombies
        self.init_zombies = init_zombies
        self.init_guess = init_guess
        self.probe = probe

    @property
    def reaps(self) -> bool | None:
        return REAPS[self.verdict]

    def as_dict(self) -> dict[str, object]:
        c = self.container.as_dict()
        return {
            "id": c["id"],
            "runtime": c["runtime"],
            "pod": c["pod"],
            "pidns": c["pidns"],
            "init_pid": c["init_pid"],
            "init": for_json(self.init),
            "init_guess": self.init_guess,
            "cgroup": c["cgroup"],
            "k8s_namespace": c["k8s_namespace"],
            "k8s_pod": c["k8s_pod"],
            "k8s_container": c["k8s_container"],
            "reaps": self.reaps,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "zombies": self.zombies,
            "init_zombies": self.init_zombies,
            "probe": None if self.probe is None else self.probe.as_dict(),
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
        from zombiectl.listing.render_text import container_labels

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
    held: list[int],
    now: int,
    known: str | None,
    timeout: float,
    *,
    reaped: int = 0,
    guess: str | None = None,
    probe: ProbeResult | None = None,
) -> tuple[str, str]:
    """(verdict, evidence) by the table in this module's docstring.

    held: zombie children of PID 1 seen at both looks; now: its zombie children at the
    second look; reaped: first-look zombies gone by the second; known: the host's
    reaping init its executable is, by content; guess: the one its names claim.
    """
    if probe is not None and probe.outcome != "error":
        return probe.outcome, _probe_evidence(probe, timeout)
    pids = " ".join(str(p) for p in held[:8]) + (" …" if len(held) > 8 else "")
    if held and not reaped:
        return "never", (
            f"PID 1 held {len(held)} zombie(s) at both looks {timeout:g} s apart "
            f"(pids {pids}), and reaped none: it did not reap the orphans it adopts within "
            f"{timeout:g} s (`--probe` tells slow from never)"
        )
    if reaped:
        if held:
            return "slow", (
                f"PID 1 reaped {reaped} zombie(s) between the looks but held {len(held)} "
                f"across both (pids {pids}): it reaps, slowly"
            )
        return "reaps", f"PID 1 reaped {reaped} zombie(s) between looks {timeout:g} s apart"
    if known is not None:
        seen = f"{now} zombie(s) at the second look, none" if now else "no zombie"
        return "reaps", (
            f"PID 1's executable is the host's {known} (same content), a reaping init; "
            f"{seen} held across both looks"
        )
    if guess is not None:
        return "unknown", (
            f"PID 1 calls itself {guess}, but its executable is no reaping init installed "
            "here and no reaping was seen: a name proves nothing (`--probe` tells)"
        )
    return "unknown", (
        f"no zombie held across two looks {timeout:g} s apart, but PID 1 is not a known "
        "reaping init: it may never have adopted an orphan (a caught SIGCHLD proves nothing)"
    )


def _probe_evidence(probe: ProbeResult, timeout: float) -> str:
    if probe.outcome == "never":
        return (
            f"the probe's orphan was not reaped within {timeout:g} s: PID 1 does not reap "
            "(the orphan stays a zombie until the container stops)"
        )
    seconds = probe.seconds or 0.0
    when = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    if probe.outcome == "slow":
        return f"the probe's orphan was reaped after {when}: PID 1 reaps, slowly (it polls?)"
    return f"the probe's orphan was reaped after {when}"


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


class NoSuchContainer(ZombiectlError):
    exit_code = EXIT_NO_PROCESS


def containers_named(ids: tuple[str, ...]) -> Callable[[], list[Container]]:
    """What audit_containers looks at: every container, or only those with these ids
    (NoSuchProcess, exit 3, for an id no container has)."""
    if not ids:
        return all_containers

    def find() -> list[Container]:
        found = [c for c in all_containers() if c.id in ids]
        missing = sorted(set(ids) - {c.id for c in found})
        if missing:
            raise NoSuchContainer(f"no such container: {display(missing[0])}")
        return found

    return find


def audit_containers(
    timeout: float = DEFAULT_CONTAINERS_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    find: Callable[[], list[Container]] = all_containers,
    *,
    probing: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> ContainersReport:
    """Look at every container's PID 1 twice, timeout apart (probing each meanwhile when
    asked), and judge each."""
    containers = find()
    first = {c.init_pid: _zombies(c.init_pid) for c in containers}
    began = clock()
    probes = {c.init_pid: probe(c, timeout) for c in containers} if probing else {}
    if containers:
        sleep(max(timeout - (clock() - began), 0.0) if probing else timeout)
    totals = container_zombies(containers)
    audits = []
    for c in containers:
        second = _zombies(c.init_pid)
        before = first[c.init_pid]
        held = sorted(p for p, start in second.items() if before.get(p) == start)
        reaped = sum(1 for p, start in before.items() if second.get(p) != start and _gone(p, start))
        guess = known_init(read_exe(c.init_pid), read_argv(c.init_pid))
        known = host_init_by_content(c.init_pid)
        word, evidence = verdict(
            held,
            len(second),
            known,
            timeout,
            reaped=reaped,
            guess=guess,
            probe=probes.get(c.init_pid),
        )
        audits.append(
            InitAudit(
                c,
                _name(c.init_pid),
                word,
                evidence,
                max(totals.get(c.key, 0), len(second)),
                len(second),
                init_guess=guess,
                probe=probes.get(c.init_pid),
            )
        )
    return ContainersReport(audits, timeout)


def _gone(pid: int, start: float) -> bool:
    """The zombie pid (started at start) no longer exists: someone reaped it."""
    ident = read_identity(pid)
    return ident is None or ident.starttime != start


def container_zombies(containers: list[Container]) -> dict[str, int]:
    """Every zombie of each container (by key), whoever in it holds them: one scan."""
    from zombiectl.listing.zombies import attribute
    from zombiectl.proc.table import scan

    by_init = {c.init_pid: c.key for c in containers}
    parents = scan().zombies_by_parent()
    placed, _ = attribute(parents)
    out: dict[str, int] = {}
    for g in parents:
        c = placed.get(g.pid)
        if c is not None and c.init_pid in by_init:
            key = by_init[c.init_pid]
            out[key] = out.get(key, 0) + g.zombies
    return out


# --------------------------------------------------------------------------- init by content

HOST_INIT_DIRS = (
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/libexec/docker",
    "/usr/libexec/podman",
    "/usr/lib/podman",
)
HOST_INIT_NAMES = {
    "tini": "tini",
    "tini-static": "tini",
    "dumb-init": "dumb-init",
    "catatonit": "catatonit",
    "docker-init": "docker-init",
}
# An init is a small static binary; anything bigger is not one of these.
MAX_INIT_BYTES = 16 << 20
_host_inits: list[tuple[int, str, str]] | None = None  # (size, sha256, name)


def host_init_by_content(pid: int) -> str | None:
    """The reaping init installed on the host that pid's executable is, byte for byte.

    Only root-owned files no one else may write count as the host's: anything else
    could be made to match whatever a container runs.
    """
    try:
        size = os.stat(exe_path(pid)).st_size
    except OSError:
        return None
    candidates = [(digest, name) for s, digest, name in _installed_inits() if s == size]
    if not candidates:
        return None
    digest = _sha256(exe_path(pid))
    for known, name in candidates:
        if digest is not None and digest == known:
            return name
    return None


def _installed_inits() -> list[tuple[int, str, str]]:
    global _host_inits
    if _host_inits is None:
        found: dict[str, tuple[int, str, str]] = {}
        for directory in HOST_INIT_DIRS:
            for file, name in HOST_INIT_NAMES.items():
                path = os.path.realpath(f"{directory}/{file}")
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if st.st_uid != 0 or st.st_mode & 0o022 or st.st_size > MAX_INIT_BYTES:
                    continue
                digest = _sha256(path)
                if digest is not None and path not in found:
                    found[path] = (st.st_size, digest, name)
        _host_inits = list(found.values())
    return _host_inits


def _sha256(path: str) -> str | None:
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            left = MAX_INIT_BYTES
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    except OSError:
        return None
    return h.hexdigest()
