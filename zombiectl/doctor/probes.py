"""Probes for `zombiectl doctor`: does this machine or container reap orphans?

Each probe returns data; `findings()` turns the data into verdicts with advice,
`Diagnosis.exit_code()` into the command's exit code (1 when any finding is bad), and
`zombiectl.doctor.render` renders them. Nothing here prints.

The central probe makes a real orphan: a child forks a grandchild and exits, so the
grandchild is re-parented to whoever adopts orphans here (PID 1, or the nearest child
subreaper such as `zombiectl run` or `tini -s`). The grandchild is then told to exit,
and the probe times how long its pid stays in /proc, that is, until the adopter reaps
it. The wait is bounded; an adopter that does not reap within the bound keeps the
orphan as a zombie, and the report says which pid that is.

A shell transcript, on a machine whose PID 1 does not reap:

    $ zombiectl doctor --json --timeout 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["orphan_probe"])'
    {'orphan_pid': 19767, 'adopter_pid': 1, 'adopter_name': 'process_api', 'adopter_is_pid1': True, 'reaped': False, 'seconds': 1.0153377260003253, 'timeout': 1.0, 'error': None}
"""

from __future__ import annotations

import os
import resource
import signal
import time
from dataclasses import asdict, dataclass, field

from zombiectl.errors import EXIT_CONDITION, EXIT_OK
from zombiectl.proc.files import PROC, bcat, cat, pid_path, proc_path
from zombiectl.proc.identity import is_namespace_init, namespace_pids, pidfd_support
from zombiectl.proc.ns import INITIAL_PID_NAMESPACE, namespace_inode
from zombiectl.proc.table import count_tasks, parse_signal_masks, read_proc, scan
from zombiectl.untrusted import from_proc

FAST_REAP_S = 0.25  # an adopter that reaps on SIGCHLD does so within milliseconds
DEFAULT_TIMEOUT = 5.0
KNOWN_INITS = {
    "systemd",
    "init",
    "tini",
    "docker-init",
    "dumb-init",
    "catatonit",
    "s6-svscan",
    "runit",
    "runsvdir",
    "openrc-init",
    "busybox",
    "supervisord",
}
RUN_ADVICE = "use `zombiectl run --` (or tini, dumb-init) as the entry point, or your runtime's init option (`docker run --init`)"
# Above this share of the tightest pid limit, a fork may fail any moment: bad.
PIDS_BAD = 0.9
PIDS_WARN = 0.5

OK, WARN, BAD, INFO = "ok", "warn", "bad", "info"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class OrphanProbe:
    orphan_pid: int | None
    adopter_pid: int | None
    adopter_name: str | None
    adopter_is_pid1: bool
    reaped: bool
    seconds: float | None
    timeout: float
    error: str | None = None


@dataclass(frozen=True)
class Pid1:
    name: str | None
    cmdline: str | None
    sigchld: str | None  # caught | blocked | sigwait | ignored | default | None (unreadable)
    known_init: bool


@dataclass(frozen=True)
class ContainerCheck:
    detected: bool
    runtime: str | None
    evidence: list[str]
    pid_namespace: str  # initial | child | unknown


@dataclass(frozen=True)
class Pidfd:
    supported: bool
    detail: str


@dataclass(frozen=True)
class Hidepid:
    value: str | None  # 0 | 1 | 2 | invisible | noaccess | ptraceable | None
    options: str | None


@dataclass(frozen=True)
class PtraceScope:
    value: int | None
    meaning: str


@dataclass(frozen=True)
class PidUsage:
    tasks: int | None  # pids in use: every thread (and zombie) holds one
    processes: int
    pid_max: int | None
    threads_max: int | None
    nproc_soft: int | None  # None: unlimited
    nproc_hard: int | None
    nproc_enforced: bool
    user_tasks: int | None
    cgroup_pids_max: int | None
    cgroup_pids_current: int | None


@dataclass(frozen=True)
class ZombiesNow:
    count: int
    parents: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | warn | bad | info
    summary: str
    advice: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    orphan_probe: OrphanProbe | None
    pid1: Pid1
    container: ContainerCheck
    pidfd: Pidfd
    proc_hidepid: Hidepid
    ptrace_scope: PtraceScope
    pids: PidUsage
    zombies: ZombiesNow
    findings: list[Finding]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def bad(self) -> list[Finding]:
        return [f for f in self.findings if f.status == BAD]

    def exit_code(self) -> int:
        """1 when any finding is bad, else 0 (warnings too): a CI check or a healthcheck."""
        return EXIT_CONDITION if self.bad else EXIT_OK


# --------------------------------------------------------------------------- small readers


# Bounds on what is read of a file that can grow: a process's environment, and the
# mount table of a host with many containers.
ENVIRON_MAX = 64 << 10
MOUNTINFO_MAX = 4 << 20


def _read_int(path: str) -> int | None:
    text = cat(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def sigchld_disposition(status_text: str) -> str | None:
    """How a process treats SIGCHLD, from its /proc/PID/status masks."""
    masks = parse_signal_masks(status_text)
    if masks is None or not {"SigBlk", "SigIgn", "SigCgt"} <= masks.keys():
        return None
    bit = 1 << (signal.SIGCHLD - 1)
    if masks["SigIgn"] & bit:
        return "ignored"
    if masks["SigCgt"] & bit:
        return "caught"
    if masks["SigBlk"] & bit:
        return "blocked"
    return "default"


def hidepid_of(mountinfo: str) -> Hidepid:
    """The hidepid option of the /proc mount, from /proc/self/mountinfo."""
    for line in mountinfo.splitlines():
        parts = line.split(" - ")
        if len(parts) != 2:
            continue
        left, right = parts[0].split(), parts[1].split()
        if len(left) < 5 or left[4] != PROC or not right or right[0] != "proc":
            continue
        options = right[2] if len(right) > 2 else ""
        value = "0"
        for opt in options.split(","):
            if opt.startswith("hidepid="):
                value = opt.split("=", 1)[1]
        return Hidepid(value, options)
    return Hidepid(None, None)


def cgroup_pids_dirs(cgroup_text: str) -> list[str]:
    """Where this process's pids controller files are (cgroup v1 and v2)."""
    dirs = []
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "pids" in controllers.split(","):
            dirs.append(f"/sys/fs/cgroup/pids{path}")
        elif controllers == "":
            dirs.append(f"/sys/fs/cgroup{path}")
    return dirs


# --------------------------------------------------------------------------- probes


def probe_orphan(timeout: float = DEFAULT_TIMEOUT) -> OrphanProbe:
    """Make one orphan, see who adopts it and how long until it is reaped.

    The grandchild's pid comes back through a pipe; a second pipe holds it alive until
    its new parent has been read, then closing that pipe makes it exit. Our own child
    (the middle process) is always reaped here; only the orphan is left to its adopter.
    """
    pid_r, pid_w = os.pipe()
    hold_r, hold_w = os.pipe()
    try:
        middle = os.fork()
    except OSError as err:
        for fd in (pid_r, pid_w, hold_r, hold_w):
            os.close(fd)
        return OrphanProbe(None, None, None, False, False, None, timeout, f"fork: {err}")
    if middle == 0:  # pragma: no cover - child
        try:
            os.close(pid_r)
            os.close(hold_w)
            orphan = os.fork()
            if orphan == 0:
                os.close(pid_w)
                os.read(hold_r, 1)  # EOF: the probe has seen who adopted us
            else:
                os.write(pid_w, str(orphan).encode())
        finally:
            os._exit(0)
    os.close(pid_w)
    os.close(hold_r)
    try:
        data = b""
        while chunk := os.read(pid_r, 64):
            data += chunk
        os.close(pid_r)
        os.waitpid(middle, 0)  # the orphan is re-parented before this returns
        if not data:
            return OrphanProbe(None, None, None, False, False, None, timeout, "fork failed")
        orphan = int(data)
        info = read_proc(orphan)
        adopter = info.ppid if info is not None else None
    except BaseException:
        os.close(hold_w)
        raise
    adopter_info = read_proc(adopter) if adopter else None
    name = adopter_info.name if adopter_info is not None else None
    if adopter == os.getpid():
        # We are PID 1 or a subreaper: the orphan came back to us. Reap it and say so.
        os.close(hold_w)
        os.waitpid(orphan, 0)
        return OrphanProbe(
            orphan,
            adopter,
            name,
            adopter == 1,
            True,
            0.0,
            timeout,
            "zombiectl doctor itself (PID 1 or a subreaper)",
        )
    started = time.monotonic()
    os.close(hold_w)
    reaped, seconds = _wait_gone(orphan, adopter, started, timeout)
    return OrphanProbe(orphan, adopter, name, adopter == 1, reaped, seconds, timeout)


def _wait_gone(pid: int, parent: int | None, started: float, timeout: float) -> tuple[bool, float]:
    """Poll until pid has left /proc (or belongs to another parent: reused)."""
    deadline = started + timeout
    interval = 0.001
    while True:
        info = read_proc(pid)
        now = time.monotonic()
        if info is None or info.ppid != parent:
            return True, now - started
        if now >= deadline:
            return False, now - started
        time.sleep(interval)
        interval = min(interval * 1.5, 0.02)


def _read_name(path: str) -> str | None:
    """A name or command line from /proc: any bytes its process chose (see untrusted)."""
    raw = bcat(path)
    return None if raw is None else from_proc(raw)


def probe_pid1() -> Pid1:
    comm = _read_name(pid_path(1, "comm"))
    name = comm.removesuffix("\n") if comm else None
    raw = _read_name(pid_path(1, "cmdline"))
    cmdline = raw.replace("\0", " ").strip() if raw else None
    status = cat(pid_path(1, "status"))
    sigchld = sigchld_disposition(status) if status else None
    if sigchld == "default" and "sigtimedwait" in (cat(pid_path(1, "wchan")) or ""):
        # Inside sigwaitinfo the kernel unblocks the awaited signals, so SigBlk no longer
        # shows SIGCHLD; where PID 1 sleeps says it waits for signals (as tini does).
        sigchld = "sigwait"
    base = os.path.basename((cmdline or "").split(" ")[0]) if cmdline else ""
    known = bool({name, base} & KNOWN_INITS) or "zombiectl" in (cmdline or "")
    return Pid1(name, cmdline, sigchld, known)


def probe_container() -> ContainerCheck:
    evidence: list[str] = []
    runtime = None
    if os.path.exists("/.dockerenv"):
        evidence.append("/.dockerenv exists")
        runtime = "docker"
    if os.path.exists("/run/.containerenv"):
        evidence.append("/run/.containerenv exists")
        runtime = runtime or "podman"
    environ = cat(pid_path(1, "environ"), ENVIRON_MAX) or ""
    for entry in environ.split("\0"):
        if entry.startswith("container="):
            evidence.append(f"PID 1 has {entry}")
            runtime = runtime or entry.split("=", 1)[1]
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        evidence.append("KUBERNETES_SERVICE_HOST is set")
        runtime = runtime or "kubernetes"
    cgroup = cat(pid_path(1, "cgroup"), ENVIRON_MAX) or ""
    for word in ("kubepods", "docker", "libpod", "containerd", "lxc"):
        if word in cgroup:
            evidence.append(f"PID 1's cgroup mentions {word}")
            runtime = runtime or word
            break
    inode = namespace_inode("self", "pid")
    if inode is None:
        namespace = "unknown"
    else:
        namespace = "initial" if inode == INITIAL_PID_NAMESPACE else "child"
    if namespace == "child":
        evidence.append("this is a child PID namespace")
    return ContainerCheck(bool(evidence), runtime, evidence, namespace)


def probe_pidfd() -> Pidfd:
    return Pidfd(*pidfd_support())


PTRACE_MEANINGS = {
    0: "classic: any process may trace another of the same user",
    1: "restricted: only a parent may trace its descendants (or with CAP_SYS_PTRACE)",
    2: "admin-only: tracing needs CAP_SYS_PTRACE",
    3: "no tracing at all",
}


def probe_ptrace() -> PtraceScope:
    value = _read_int(proc_path("sys", "kernel", "yama", "ptrace_scope"))
    if value is None:
        return PtraceScope(None, "no Yama: ordinary ptrace permission checks")
    return PtraceScope(value, PTRACE_MEANINGS.get(value, "unknown"))


def probe_pids(processes: int) -> PidUsage:
    tasks, user_tasks = count_tasks(os.getuid())
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    # RLIMIT_NPROC is not enforced for root (CAP_SYS_RESOURCE or CAP_SYS_ADMIN).
    enforced = os.geteuid() != 0 and soft != resource.RLIM_INFINITY
    cg_max = cg_cur = None
    for directory in cgroup_pids_dirs(cat(pid_path("self", "cgroup"), ENVIRON_MAX) or ""):
        limit = _read_int(f"{directory}/pids.max")
        if limit is not None:
            cg_max, cg_cur = limit, _read_int(f"{directory}/pids.current")
            break
    return PidUsage(
        tasks=tasks,
        processes=processes,
        pid_max=_read_int(proc_path("sys", "kernel", "pid_max")),
        threads_max=_read_int(proc_path("sys", "kernel", "threads-max")),
        nproc_soft=None if soft == resource.RLIM_INFINITY else soft,
        nproc_hard=None if hard == resource.RLIM_INFINITY else hard,
        nproc_enforced=enforced,
        user_tasks=user_tasks if enforced else None,
        cgroup_pids_max=cg_max,
        cgroup_pids_current=cg_cur,
    )


# --------------------------------------------------------------------------- verdicts


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def orphan_finding(probe: OrphanProbe | None, pid1: Pid1) -> Finding:
    if probe is None:
        return Finding("orphans", INFO, "orphan probe skipped (--no-probe)")
    if probe.error and probe.orphan_pid is None:
        return Finding("orphans", WARN, f"could not make an orphan: {probe.error}")
    who = "PID 1" if probe.adopter_is_pid1 else f"pid {probe.adopter_pid}"
    who += f" ({probe.adopter_name})" if probe.adopter_name else ""
    if probe.error:  # we adopted our own orphan
        return Finding(
            "orphans",
            INFO,
            f"adopted by {who}: {probe.error}, so the probe says nothing about this system",
            "run `zombiectl doctor` as an ordinary process (for example with `docker exec`)",
        )
    if probe.reaped and probe.seconds is not None and probe.seconds <= FAST_REAP_S:
        role = "PID 1" if probe.adopter_is_pid1 else "a child subreaper"
        return Finding(
            "orphans", OK, f"adopted by {who}, {role}, and reaped after {_ms(probe.seconds)}"
        )
    if probe.reaped and probe.seconds is not None:
        reaper = "PID 1" if probe.adopter_is_pid1 else who
        return Finding(
            "orphans",
            WARN,
            f"adopted by {who} and reaped after {_ms(probe.seconds)}: "
            f"{reaper} reaps, but slowly (it polls rather than waiting for SIGCHLD)",
            "orphans stay zombies between its polls, and a fast forker can fill the pid "
            f"table; for prompt reaping {RUN_ADVICE}",
        )
    left = f"; orphan {probe.orphan_pid} stays a zombie until {who} reaps it or exits"
    if probe.adopter_is_pid1:
        return Finding(
            "orphans",
            BAD,
            f"adopted by {who}, not reaped within {probe.timeout:g} s: PID 1 here does not reap{left}",
            f"PID 1 here does not reap: {RUN_ADVICE}",
        )
    return Finding(
        "orphans",
        BAD,
        f"adopted by {who}, a child subreaper, not reaped within {probe.timeout:g} s{left}",
        f"the subreaper {who} does not reap its orphans: run it under `zombiectl run --`, "
        "or make it wait for SIGCHLD",
    )


def pid1_finding(pid1: Pid1, probe: OrphanProbe | None) -> Finding:
    name = pid1.name or "?"
    how = {
        "caught": "catches SIGCHLD (a handler that can reap)",
        "blocked": "blocks SIGCHLD (and reads it from a signalfd, as catatonit does)",
        "sigwait": "waits for signals with sigwaitinfo (as tini and zombiectl run do)",
        "ignored": "ignores SIGCHLD, so the kernel reaps its children itself",
        "default": "does not listen for SIGCHLD: it can reap only by polling wait()",
        None: "its signal masks are unreadable",
    }[pid1.sigchld]
    summary = f"PID 1 is {name}; it {how}"
    if probe is not None and probe.adopter_is_pid1 and probe.error is None:
        if probe.reaped:
            return Finding("pid1", OK if probe.seconds and probe.seconds <= FAST_REAP_S else WARN,
                           f"{summary}; it reaped the probe's orphan")  # fmt: skip
        # The advice is the orphan finding's; saying it twice adds nothing.
        return Finding("pid1", BAD, f"{summary}; it did not reap the probe's orphan")
    if pid1.sigchld == "default" and not pid1.known_init:
        return Finding("pid1", WARN, summary, f"if PID 1 adopts orphans here, {RUN_ADVICE}")
    return Finding("pid1", OK if pid1.known_init else INFO, summary)


def container_finding(c: ContainerCheck) -> Finding:
    ns = {"initial": "the host's PID namespace", "child": "a PID namespace of its own"}.get(
        c.pid_namespace, "an unknown PID namespace"
    )
    if c.detected:
        kind = f"a container ({c.runtime})" if c.runtime else "a container"
        return Finding("container", INFO, f"{kind}, in {ns}: " + "; ".join(c.evidence))
    return Finding("container", INFO, f"not a container as far as can be seen; {ns}")


def pids_finding(p: PidUsage, zombies: int) -> Finding:
    limits = []
    if p.pid_max:
        limits.append((p.pid_max, "pid_max", p.tasks))
    if p.threads_max:
        limits.append((p.threads_max, "threads-max", p.tasks))
    if p.cgroup_pids_max:
        limits.append((p.cgroup_pids_max, "the cgroup's pids.max", p.cgroup_pids_current))
    if p.nproc_enforced and p.nproc_soft:
        limits.append((p.nproc_soft, "RLIMIT_NPROC", p.user_tasks))
    usable = [(used / limit, name, used, limit) for limit, name, used in limits if used]
    if not usable:
        return Finding("pids", INFO, f"{p.processes} processes; limits unreadable")
    share, name, used, limit = max(usable)
    nproc = (
        f"RLIMIT_NPROC {p.nproc_soft}"
        if p.nproc_enforced
        else "RLIMIT_NPROC not enforced (root)"
        if os.geteuid() == 0
        else "RLIMIT_NPROC unlimited"
    )
    summary = (
        f"{p.tasks} pids in use ({p.processes} processes, the rest threads) of pid_max {p.pid_max}; {nproc}; "
        f"tightest: {used} of {limit} ({name}, {share:.0%}); zombies hold {zombies}"
    )
    if share > PIDS_BAD:
        return Finding("pids", BAD, summary,
                       "new processes will soon fail with EAGAIN: clear zombies (`zombiectl reap`) "
                       "or raise the limit")  # fmt: skip
    if share >= PIDS_WARN:
        return Finding(
            "pids", WARN, summary, "half the pids are taken: watch `zombiectl list --max`"
        )
    return Finding("pids", OK, summary)


def zombies_finding(z: ZombiesNow) -> Finding:
    if not z.count:
        return Finding("zombies", OK, "no zombies now")
    top = ", ".join(f"{p['name']} ({p['pid']}): {p['zombies']}" for p in z.parents)
    return Finding(
        "zombies", WARN, f"{z.count} zombie(s) now; biggest leakers: {top}", leaker_advice(z)
    )


def leaker_advice(z: ZombiesNow) -> str:
    """What clears each leaker's zombies: `reap` for a process, a new init for an init.

    `reap` never ends PID 1, nor the init of any PID namespace (a container's), so it is
    not offered for them: only restarting them with an init that reaps helps.
    """
    inits = [p for p in z.parents if p.get("init")]
    others = [p for p in z.parents if not p.get("init")]
    parts = []
    if others:
        pids = " ".join(f"--pid {p['pid']}" for p in others)
        parts.append(f"`zombiectl reap {pids}` nudges the leakers with SIGCHLD, after a plan")
    if inits:
        names = ", ".join(
            f"{p['name']} ({'PID 1 here' if p['pid'] == 1 else p['pid']})" for p in inits
        )
        parts.append(
            f"{names}: {'each ' if len(inits) > 1 else ''}the init of a PID namespace "
            "(PID 1 here, or a container's), which "
            "`reap` will not end, since that ends every process in it; restart it with an "
            "init that reaps (`docker run --init`, tini, or `zombiectl run --` as the "
            "entry point)"
        )
    return "; ".join(parts) + "; `zombiectl list` shows who leaks"


def findings(
    probe: OrphanProbe | None,
    pid1: Pid1,
    container: ContainerCheck,
    pidfd: Pidfd,
    hidepid: Hidepid,
    ptrace: PtraceScope,
    pids: PidUsage,
    zombies: ZombiesNow,
) -> list[Finding]:
    out = [
        orphan_finding(probe, pid1),
        pid1_finding(pid1, probe),
        container_finding(container),
    ]
    if pidfd.supported:
        out.append(Finding("pidfd", OK, pidfd.detail))
    else:
        out.append(Finding("pidfd", WARN, pidfd.detail,
                           "without pidfds `zombiectl reap` signals by pid after checking "
                           "the start time again (psutil), which leaves a moment in which "
                           "the pid can be reused; a kernel of 5.3 or later closes it"))  # fmt: skip
    if hidepid.value in (None, "0", "off"):
        seen = "unknown" if hidepid.value is None else "every process is visible"
        out.append(Finding("proc", OK if hidepid.value else INFO, f"/proc hidepid: {seen}"))
    else:
        hidden = os.geteuid() != 0
        out.append(Finding(
            "proc",
            WARN if hidden else INFO,
            f"/proc is mounted with hidepid={hidepid.value}: other users' processes are hidden"
            + ("" if hidden else " (not from root)"),
            "run zombiectl as root (or in the proc mount's gid= group) to see every zombie"
            if hidden else None,
        ))  # fmt: skip
    ptrace_summary = (
        f"ptrace_scope {ptrace.value}: {ptrace.meaning}"
        if ptrace.value is not None
        else ptrace.meaning
    )
    ptrace_advice = None
    if ptrace.value is not None and ptrace.value >= 1 and os.geteuid() != 0:
        ptrace_advice = "to see why a parent never calls wait(), `strace -p PID` needs root here"
    out.append(Finding("ptrace", INFO, ptrace_summary, ptrace_advice))
    out.append(pids_finding(pids, zombies.count))
    out.append(zombies_finding(zombies))
    return out


def is_init(pid: int) -> bool:
    """PID 1 here, or PID 1 of some other PID namespace (a container's init)."""
    return pid == 1 or (pid > 1 and is_namespace_init(namespace_pids(pid)))


def diagnose(timeout: float = DEFAULT_TIMEOUT, probe: bool = True) -> Diagnosis:
    """Run every probe (zombies are counted before the orphan probe makes one)."""
    snap = scan()
    groups = snap.zombies_by_parent()
    zombies = ZombiesNow(
        sum(g.zombies for g in groups),
        [
            {"pid": g.pid, "name": g.name, "zombies": g.zombies, "init": is_init(g.pid)}
            for g in groups[:3]
        ],
    )
    pid1 = probe_pid1()
    orphan = probe_orphan(timeout) if probe else None
    container = probe_container()
    pidfd = probe_pidfd()
    hidepid = hidepid_of(cat(pid_path("self", "mountinfo"), MOUNTINFO_MAX, whole=True) or "")
    ptrace = probe_ptrace()
    pids = probe_pids(len(snap))
    return Diagnosis(
        orphan,
        pid1,
        container,
        pidfd,
        hidepid,
        ptrace,
        pids,
        zombies,
        findings(orphan, pid1, container, pidfd, hidepid, ptrace, pids, zombies),
    )
