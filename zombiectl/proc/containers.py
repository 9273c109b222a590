"""Which container a process is in: its PID namespace, the namespace's init, and an id.

A container here is a PID namespace other than zombiectl's own (everything in ours is
the host). Its key is the namespace's inode (``/proc/PID/ns/pid``). Where that link
cannot be read (no ptrace access to the process), a process whose ``NSpid`` in
``/proc/PID/status`` has more than one entry is in a child namespace, and the
namespace is found by its init: the nearest ancestor whose ``NSpid`` ends in 1.

The id comes from the init's ``/proc/PID/cgroup``, matched against the usual layouts
(docker, containerd/CRI, CRI-O, podman, Kubernetes, systemd units, plain runc/crun).
A namespace whose init sits in its parent's cgroup (``unshare --pid --fork``) has no
cgroup of its own; it, and any two namespaces that would share an id, get
``pidns:<inode>`` (or ``init:<pid>``), so ids are unique.

The parsers are pure functions on file contents; `Attributor` reads the files, and only
for the pids it is asked about (`list` asks only about parents that hold zombies).

`Attributor().container_of(pid)` is None on the host; for a process in a runc
container, `as_dict()` gives the container's `id` (runc's name), `runtime` ("runc"),
`pod`, `pidns` (the PID namespace's inode), `init_pid` and `cgroup`; for one in a bare
PID namespace (`unshare --pid --fork`), the id is `pidns:INODE` and the runtime None.

Stdlib only (besides proc.table) and no dataclasses: `list --json` imports this on its fast path.
"""

from __future__ import annotations

import os

from zombiectl.proc.table import parse_nspid

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

PROC = "/proc"
CGROUP_ROOT = "/sys/fs/cgroup"
# The v1 hierarchies tried, in this order, when the unified (0::) path is "/".
V1_ORDER = ("name=systemd", "pids", "memory", "cpu")

_HEX64 = r"[0-9a-f]{64}"
_ID = r"[0-9A-Za-z][0-9A-Za-z_.-]*"
# (runtime, pattern on one path element whose group 1 is the id). First match wins.
_ELEMENT_LAYOUTS = (
    ("docker", rf"^docker-({_HEX64})\.scope$"),
    ("containerd", rf"^cri-containerd-({_ID})\.scope$"),
    ("cri-o", rf"^crio-(?!conmon-)({_ID}?)(?:\.scope)?$"),
    ("podman", rf"^libpod-(?!conmon-)({_ID}?)(?:\.scope)?$"),
)
_K8S_CONTAINER = rf"^(?:cri-containerd-|docker-|crio-)?({_ID}?)(?:\.scope)?$"
_POD = r"(?:^|-)pod([0-9a-fA-F_-]+?)(?:\.slice)?$"
_compiled: dict[str, re.Pattern[str]] = {}


def _re(pattern: str) -> re.Pattern[str]:
    """The compiled pattern. `re` is imported on first use, not with the module: the
    textfile fast path imports this module and most hosts never classify a path."""
    compiled = _compiled.get(pattern)
    if compiled is None:
        import re

        compiled = _compiled[pattern] = re.compile(pattern)
    return compiled


class Container:
    """A container a process is in (None stands for the host)."""

    __slots__ = ("cgroup", "hierarchies", "id", "init_pid", "own_cgroup", "pidns", "pod", "runtime")

    def __init__(
        self,
        id: str,
        runtime: str | None,
        pod: str | None,
        pidns: int | None,
        init_pid: int,
        cgroup: str,
        hierarchies: dict[str, str] | None = None,
        own_cgroup: bool = False,
    ) -> None:
        self.id = id
        self.runtime = runtime
        self.pod = pod
        self.pidns = pidns
        self.init_pid = init_pid
        self.cgroup = cgroup
        # The init's cgroup per hierarchy, and whether the cgroup is the container's own
        # (not one it inherited from whoever started it): only then are its pids its own.
        self.hierarchies = hierarchies if hierarchies is not None else {}
        self.own_cgroup = own_cgroup

    @property
    def key(self) -> str:
        return f"pidns:{self.pidns}" if self.pidns is not None else f"init:{self.init_pid}"

    def as_dict(self) -> dict[str, object]:
        from zombiectl.untrusted import for_json

        return {
            "id": for_json(self.id),
            "runtime": self.runtime,
            "pod": None if self.pod is None else for_json(self.pod),
            "pidns": self.pidns,
            "init_pid": self.init_pid,
            "cgroup": for_json(self.cgroup),
        }

    def __repr__(self) -> str:
        return f"Container({self.as_dict()!r})"

    def pids(self) -> tuple[int, int | None] | None:
        """(pids.current, pids.max or None when unlimited) of the container's own pids
        cgroup; None when it has none of its own or the files cannot be read."""
        if not self.own_cgroup:
            return None
        directory = pids_directory(self.hierarchies)
        if directory is None:
            return None
        current = _read_count(f"{directory}/pids.current")
        if current is None:
            return None
        limit = (_read(f"{directory}/pids.max", 64) or "").strip()
        return current, (int(limit) if limit.isascii() and limit.isdigit() else None)


# --------------------------------------------------------------------------- parsers


def parse_cgroup(text: str) -> dict[str, str]:
    """Hierarchy -> path from a ``/proc/PID/cgroup`` text; the unified hierarchy is "".

    A v1 line names its controllers ("4:memory:/x", "1:cpu,cpuacct:/x"): each gets
    the path. Malformed lines are skipped.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out.setdefault(name, path)
    return out


def cgroup_path(hierarchies: dict[str, str]) -> str | None:
    """The path that names a container: unified when not "/", else the first v1 in V1_ORDER."""
    unified = hierarchies.get("")
    if unified is not None and unified != "/":
        return unified
    for name in V1_ORDER:
        path = hierarchies.get(name)
        if path is not None and path != "/":
            return path
    return None


def classify(path: str) -> tuple[str, str | None, str | None]:
    """(id, runtime, pod uid) for a cgroup path; the runtime is the layout that matched.

    Full ids, never shortened. A path no layout knows gives its last element and
    runtime None.
    """
    # ".." leads up out of the reader's cgroup namespace: not part of the layout.
    elements = [e for e in path.split("/") if e and e != ".."]
    # Podman and systemd put the payload one level down (".../libpod-ID.scope/container").
    while len(elements) > 1 and elements[-1] in ("container", "init.scope", "payload"):
        elements.pop()
    if not elements:
        return path, None, None
    if any("kubepods" in e for e in elements):
        return _classify_kubernetes(elements)
    for runtime, pattern in _ELEMENT_LAYOUTS:
        for element in reversed(elements):
            m = _re(pattern).match(element)
            if m and m.group(1):
                return m.group(1), runtime, None
    if len(elements) >= 2 and elements[-2] == "docker":
        return elements[-1], "docker", None
    last = elements[-1]
    if last.endswith(".service") and len(last) > len(".service"):
        return last, "systemd", None
    if len(elements) == 1 or elements[-2] in ("lxc", "machine.slice", "system.slice"):
        return last, "runc", None
    return last, None, None


def _classify_kubernetes(elements: list[str]) -> tuple[str, str | None, str | None]:
    pod = None
    for element in elements:
        m = _re(_POD).search(element)
        if m:
            # The systemd driver writes the uid's "-" as "_".
            pod = m.group(1).replace("_", "-")
    m = _re(_K8S_CONTAINER).match(elements[-1])
    cid = m.group(1) if m and m.group(1) else elements[-1]
    return cid, "kubernetes", pod


def parse_ppid(status_text: str) -> int | None:
    for line in status_text.splitlines():
        if line.startswith("PPid:"):
            try:
                return int(line[5:].strip())
            except ValueError:
                return None
    return None


def parse_ns_link(link: str) -> int | None:
    """The inode in a namespace link, "pid:[4026532180]" -> 4026532180."""
    if not (link.startswith("pid:[") and link.endswith("]")):
        return None
    inner = link[5:-1]
    return int(inner) if inner.isascii() and inner.isdigit() else None


def unique_ids(containers: list[Container]) -> None:
    """Give every container that shares its id with another its fallback key as id."""
    seen: dict[str, int] = {}
    for c in containers:
        seen[c.id] = seen.get(c.id, 0) + 1
    for c in containers:
        if seen[c.id] > 1:
            c.id = c.key


def pids_directory(hierarchies: dict[str, str]) -> str | None:
    """The directory of the pids controller's files for these cgroup paths, or None.

    v1 (and hybrid) hosts mount the controller at CGROUP_ROOT/pids; a v2 host has it in
    the unified tree. A path leading out of the reader's cgroup namespace ("/..") names
    a cgroup this mount cannot reach.
    """
    path = hierarchies.get("pids")
    if path is not None:
        base = f"{CGROUP_ROOT}/pids"
    else:
        path = hierarchies.get("")
        if path is None or not os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
            return None
        base = CGROUP_ROOT
    elements = [e for e in path.split("/") if e]
    if ".." in elements or "." in elements:
        return None
    return "/".join([base, *elements])


# --------------------------------------------------------------------------- reader


def _read(path: str, limit: int = 16384) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, limit).decode("utf-8", "backslashreplace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_count(path: str) -> int | None:
    text = (_read(path, 64) or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def read_pidns(pid: int | str) -> int | None:
    try:
        return parse_ns_link(os.readlink(f"{PROC}/{pid}/ns/pid"))
    except OSError:
        return None


class Attributor:
    """Finds the container of a pid, reading /proc only for the pids it is asked about.

    Results are cached per pid and per namespace, so a hundred parents in one
    container cost one read of the init's cgroup. `finish()` makes ids unique over
    every container seen.
    """

    def __init__(self) -> None:
        self.own_ns = read_pidns("self")
        self._by_pid: dict[int, Container | None] = {}
        self._by_key: dict[str, Container] = {}

    def container_of(self, pid: int) -> Container | None:
        if pid not in self._by_pid:
            self._by_pid[pid] = self._attribute(pid)
        return self._by_pid[pid]

    def containers(self) -> list[Container]:
        return list(self._by_key.values())

    def is_init(self, pid: int) -> bool:
        """True when pid is PID 1 of a namespace other than ours (as far as has been seen)."""
        c = self.container_of(pid)
        return c is not None and c.init_pid == pid

    def finish(self) -> None:
        unique_ids(self.containers())

    def _attribute(self, pid: int) -> Container | None:
        if pid <= 0:
            return None
        ns = read_pidns(pid)
        if ns is not None:
            if ns == self.own_ns:
                return None
            known = self._by_key.get(f"pidns:{ns}")
            if known is not None:
                return known
        status = _read(f"{PROC}/{pid}/status")
        if status is None:
            return None
        found = self._init_of(pid, status, ns)
        if found is None:
            return None
        init, init_status = found
        if ns is None:
            known = self._by_key.get(f"init:{init}")
            if known is not None:
                return known
        c = describe(init, ns, init_status)
        self._by_key[c.key] = c
        return c

    def _init_of(self, pid: int, status: str, ns: int | None) -> tuple[int, str] | None:
        """(host pid, status text) of PID 1 of pid's namespace, walking up the parents.

        pid's own status is already read; with ns known, an ancestor counts only when it
        is in ns (a nested namespace's PID 1 is not ours). A process entered later
        (`docker exec`, `nsenter`) has its parent outside: then ns is searched.
        """
        seen = set()
        cur, text = pid, status
        while True:
            seen.add(cur)
            nspid = parse_nspid(text)
            if ns is None and len(nspid) <= 1:
                return None  # reached our own namespace without meeting an init
            if nspid and nspid[-1] == 1 and (cur == pid or ns is None or read_pidns(cur) == ns):
                return cur, text
            parent = parse_ppid(text)
            if not parent or parent in seen:
                break
            cur = parent
            parent_text = _read(f"{PROC}/{cur}/status")
            if parent_text is None:
                break
            text = parent_text
        if ns is None:
            return None
        init = self._search_init(ns)
        if init is None:
            return None
        return init, _read(f"{PROC}/{init}/status") or ""

    def _search_init(self, ns: int) -> int | None:
        for name in os.listdir(PROC):
            if not name.isdigit() or read_pidns(name) != ns:
                continue
            nspid = parse_nspid(_read(f"{PROC}/{name}/status") or "")
            if nspid and nspid[-1] == 1:
                return int(name)
        return None


# --------------------------------------------------------------------------- inits

REAPING_INITS = (
    "tini",
    "dumb-init",
    "catatonit",
    "docker-init",
    "s6-svscan",
    "runit",
    "runit-init",
    "systemd",
)
# Inits that run one child and exit with it: ending that child stops the container.
SINGLE_CHILD_INITS = frozenset(("tini", "dumb-init", "catatonit", "docker-init", "zombiectl run"))


def known_init(exe: str | None, argv: list[str]) -> str | None:
    """The reaping init that exe or the command line names, or None.

    Both are the process's own choice (`exec -a tini sleep`): a guess, never proof.
    """
    names = [os.path.basename(exe)] if exe else []
    if argv:
        names.append(os.path.basename(argv[0]))
    for name in names:
        base = name.removesuffix(" (deleted)").removesuffix("-static")
        if base in REAPING_INITS:
            return base
    if _is_zombiectl_run(argv):
        return "zombiectl run"
    return None


def _is_zombiectl_run(argv: list[str]) -> bool:
    # `zombiectl run ...`, or `python -m zombiectl run ...`
    for i, word in enumerate(argv[:4]):
        if os.path.basename(word) == "zombiectl" and argv[i + 1 : i + 2] == ["run"]:
            return True
    return False


def read_argv(pid: int) -> list[str]:
    from zombiectl.untrusted import from_proc

    try:
        fd = os.open(f"{PROC}/{pid}/cmdline", os.O_RDONLY)
    except OSError:
        return []
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return []
    finally:
        os.close(fd)
    return [from_proc(w) for w in raw.split(b"\0") if w]


def read_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"{PROC}/{pid}/exe")
    except OSError:
        return None


def init_guess(pid: int) -> str | None:
    """The init pid's executable or command line names (a guess: see known_init)."""
    return known_init(read_exe(pid), read_argv(pid))


def main_process_of(attributor: Attributor, pid: int) -> Container | None:
    """The container pid is the main process of, or None.

    A container's main process is its PID 1, or the one child of a PID 1 that is an
    init which exits with its child (tini, dumb-init, …): ending either stops the
    container. The init is recognised by name, on purpose: a false match only makes
    `reap` more careful.
    """
    c = attributor.container_of(pid)
    if c is None:
        return None
    if c.init_pid == pid:
        return c
    if parse_ppid(_read(f"{PROC}/{pid}/status") or "") != c.init_pid:
        return None
    return c if init_guess(c.init_pid) in SINGLE_CHILD_INITS else None


def describe(init: int, ns: int | None, status: str | None = None) -> Container:
    """The container whose PID 1 is host pid init: id from its cgroup, else its key.

    status: init's /proc status text when already read (it gives the parent).
    """
    own = _read(f"{PROC}/{init}/cgroup") or ""
    hierarchies = parse_cgroup(own)
    path = cgroup_path(hierarchies)
    key = f"pidns:{ns}" if ns is not None else f"init:{init}"
    if status is None:
        status = _read(f"{PROC}/{init}/status") or ""
    if path is None or _same_cgroup_as_parent(parse_ppid(status), path):
        return Container(key, None, None, ns, init, path or "/", hierarchies)
    cid, runtime, pod = classify(path)
    return Container(cid, runtime, pod, ns, init, path, hierarchies, own_cgroup=True)


def _same_cgroup_as_parent(ppid: int | None, path: str) -> bool:
    """True when the init only inherited its parent's cgroup (no cgroup of its own)."""
    if not ppid:
        return False
    parent = _read(f"{PROC}/{ppid}/cgroup")
    if parent is None:
        return False
    return cgroup_path(parse_cgroup(parent)) == path


def all_containers() -> list[Container]:
    """Every PID namespace other than ours with a visible PID 1, ids made unique.

    A namespace's PID 1 is the process whose ``NSpid`` has more than one entry and
    ends in 1; this reads every process's status, so only `doctor --containers` uses it.
    """
    own = read_pidns("self")
    found: list[Container] = []
    for name in os.listdir(PROC):
        if name[0] not in "123456789":
            continue
        status = _read(f"{PROC}/{name}/status") or ""
        nspid = parse_nspid(status)
        if len(nspid) < 2 or nspid[-1] != 1:
            continue
        ns = read_pidns(name)
        if ns is not None and ns == own:
            continue  # we run inside this namespace: it is the host here
        found.append(describe(int(name), ns, status))
    unique_ids(found)
    found.sort(key=lambda c: c.init_pid)
    return found
