"""Which container a process is in: its PID namespace, the namespace's init, and an id.

A container here is a PID namespace other than zombiectl's own (everything in ours is
the host). A process whose ``NSpid`` (``/proc/PID/status``, readable by anyone) has
more than one entry is in one, whether or not its ``/proc/PID/ns/pid`` link can be read
(it needs ptrace access); the link's inode, where readable, is the namespace's `pidns`.
The namespace's init is the nearest ancestor at the same NSpid depth whose NSpid ends
in 1; for a process entered later (`runc exec -d`, `docker exec`), whose parents are
outside, it is found among the pids of its cgroup (`cgroup.procs`), one pass at most.

The id comes from the init's ``/proc/PID/cgroup``, matched against the usual layouts
(docker, containerd/CRI, CRI-O, podman, Kubernetes, LXC, systemd units, runc with
either cgroup driver), innermost first. Only a runtime's own tree gives a runtime id:
a subtree delegated to a user (systemd's ``user@UID.service``, or any cgroup a user
owns) gives ``user:UID/…``. A namespace whose init sits in its parent's cgroup is nested
in its parent's container and takes its id (differing by `pidns`); at the top
(``unshare --pid --fork`` on the host) it gets ``pidns:<inode>`` (or ``init:<pid>``).
Two containers never share an id: the runtime's own keeps it, the other gets its key.

The parsers are pure functions on file contents; `Attributor` reads the files, and only
for the pids it is asked about (`list` asks only about parents that hold zombies).

`Attributor().container_of(pid)` is None on the host; for a process in a runc
container, `as_dict()` gives the container's `id` (runc's name), `runtime` ("runc"),
`pod`, `pidns` (the PID namespace's inode), `init_pid`, `cgroup` and the Kubernetes
names (`k8s_namespace`, `k8s_pod`, `k8s_container`; null off Kubernetes).

Stdlib only (besides proc.table) and no dataclasses: `list --json` imports this on its fast path.
"""

from __future__ import annotations

import os

from zombiectl.proc.table import parse_nspid, read_argv, read_exe

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

PROC = "/proc"
CGROUP_ROOT = "/sys/fs/cgroup"
# How many statuses the search of a cgroup for an entered process's init may read.
CGROUP_CANDIDATES = 4096
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
    # runc's systemd cgroup driver: cgroupsPath "system.slice:runc:ID".
    ("runc", rf"^runc-({_ID}?)\.scope$"),
)
_USER_MANAGER = r"^user@([0-9]+)\.service$"
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

    __slots__ = (
        "cgroup",
        "hierarchies",
        "id",
        "init_pid",
        "k8s_container",
        "k8s_namespace",
        "k8s_pod",
        "outer",
        "own_cgroup",
        "pidns",
        "pod",
        "runtime",
    )

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
        # The container a nested PID namespace lives in: it shares that one's id.
        self.outer: Container | None = None
        # From kubelet's log symlinks, where readable (see `kubernetes_names`).
        self.k8s_namespace: str | None = None
        self.k8s_pod: str | None = None
        self.k8s_container: str | None = None

    @property
    def key(self) -> str:
        if self.pidns is not None:
            return f"pidns:{self.pidns}"
        return f"init:{self.init_pid}" if self.init_pid else f"cgroup:{self.cgroup}"

    def as_dict(self) -> dict[str, object]:
        from zombiectl.untrusted import for_json

        return {
            "id": for_json(self.id),
            "runtime": self.runtime,
            "pod": None if self.pod is None else for_json(self.pod),
            "pidns": self.pidns,
            "init_pid": self.init_pid or None,
            "cgroup": for_json(self.cgroup),
            "k8s_namespace": self.k8s_namespace,
            "k8s_pod": self.k8s_pod,
            "k8s_container": self.k8s_container,
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
    the path. Malformed lines are skipped. Only "\n" ends a line (a cgroup's name may
    hold any other character).
    """
    out: dict[str, str] = {}
    for line in text.split("\n"):
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        _, controllers, path = parts
        if "," not in controllers:
            out.setdefault(controllers, path)
            continue
        for name in controllers.split(","):
            out.setdefault(name, path)
    return out


def cgroup_path(hierarchies: dict[str, str]) -> str | None:
    """The path that names a container: unified when not "/", else the first v1 in V1_ORDER."""
    found = cgroup_path_of(hierarchies)
    return None if found is None else found[1]


def cgroup_path_of(hierarchies: dict[str, str]) -> tuple[str, str] | None:
    """(hierarchy, path) of `cgroup_path`: "" for the unified one, else the v1 name."""
    unified = hierarchies.get("")
    if unified is not None and unified != "/":
        return "", unified
    for name in V1_ORDER:
        path = hierarchies.get(name)
        if path is not None and path != "/":
            return name, path
    return None


def mount_of(hierarchy: str) -> str | None:
    """Where a hierarchy is mounted under CGROUP_ROOT, by the usual layout, or None."""
    if hierarchy == "":
        if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
            return CGROUP_ROOT
        unified = f"{CGROUP_ROOT}/unified"
        return unified if os.path.exists(f"{unified}/cgroup.controllers") else None
    name = hierarchy.removeprefix("name=")
    directory = f"{CGROUP_ROOT}/{name}"
    return directory if os.path.isdir(directory) else None


def cgroup_directory(hierarchy: str, path: str) -> str | None:
    """The directory of the cgroup at path, or None where this mount cannot reach it."""
    base = mount_of(hierarchy)
    elements = [e for e in path.split("/") if e]
    if base is None or ".." in elements or "." in elements:
        return None
    return "/".join([base, *elements])


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
    for i, element in enumerate(elements):
        m = _re(_USER_MANAGER).match(element)
        if m:
            # A subtree systemd delegates to a user: every name in it is the user's own
            # choice, so none is a runtime's id, whatever it looks like.
            return "/".join([f"user:{m.group(1)}", *elements[i + 1 :]]), None, None
    if elements[0].startswith("lxc.payload."):
        return elements[0][len("lxc.payload.") :] or elements[0], "lxc", None
    if any("kubepods" in e for e in elements):
        return _classify_kubernetes(elements)
    for runtime, pattern in _ELEMENT_LAYOUTS:
        for element in reversed(elements):
            m = _re(pattern).match(element)
            if m and m.group(1):
                return m.group(1), runtime, None
    if len(elements) >= 2 and elements[-2] == "docker":
        return elements[-1], "docker", None
    if len(elements) >= 2 and elements[-2] == "lxc":
        return elements[-1], "lxc", None
    last = elements[-1]
    if last.endswith(".service") and len(last) > len(".service"):
        return last, "systemd", None
    if len(elements) == 1 or elements[-2] in ("machine.slice", "system.slice"):
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
    """The `PPid:` of a status text (a line of its own: the kernel escapes newlines in
    the name), or None."""
    start = 0 if status_text.startswith("PPid:") else status_text.find("\nPPid:") + 1
    if start == 0 and not status_text.startswith("PPid:"):
        return None
    end = status_text.find("\n", start)
    value = status_text[start + 5 : end if end >= 0 else None].strip()
    return int(value) if value.isascii() and value.isdigit() else None


def parse_ns_link(link: str) -> int | None:
    """The inode in a namespace link, "pid:[4026532180]" -> 4026532180."""
    if not (link.startswith("pid:[") and link.endswith("]")):
        return None
    inner = link[5:-1]
    return int(inner) if inner.isascii() and inner.isdigit() else None


def unique_ids(containers: list[Container]) -> None:
    """Make every id name one container: where two would share one, the one most likely
    the runtime's own (a runtime's layout, then the shortest cgroup path) keeps it and
    the others get their fallback key. Namespaces nested in a container take its id
    (whatever it became) and differ by pidns."""
    claims: dict[str, list[Container]] = {}
    for c in containers:
        if c.outer is None:
            claims.setdefault(c.id, []).append(c)
    for same in claims.values():
        same.sort(key=lambda c: (c.runtime is None, len(c.cgroup), c.init_pid))
        for c in same[1:]:
            c.id = c.key
    for c in containers:
        if c.outer is not None:
            c.id = c.outer.id
            while c.outer.outer is not None and c.outer.outer is not c:
                c.outer = c.outer.outer  # the outermost one's id
            c.id = c.outer.id


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

    One pass at most: a process is placed by walking its parents while they are in its
    namespace (same NSpid depth) up to the one whose NSpid ends in 1. A process entered
    later (`runc exec`, `docker exec`, `nsenter`) has its parent outside; its init is
    then found among the pids of its own cgroup and the cgroups above it
    (`cgroup.procs`), and only if that fails by one read of every process's status,
    kept for every later question. Results are cached per pid, per namespace, per
    cgroup and per init, so a hundred parents in one container cost one read of the
    init's cgroup. `finish()` makes ids unique over every container seen.
    """

    def __init__(self) -> None:
        self.own_ns = read_pidns("self")
        self._by_pid: dict[int, Container | None] = {}
        self._by_key: dict[str, Container] = {}
        self._by_init: dict[int, Container] = {}
        self._cgroup_members: dict[str, dict[int | None, list[str]]] = {}
        self._statuses: dict[str, str] = {}
        self._unmatched_inits: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._all_inits: dict[int, list[tuple[int, int | None]]] | None = None

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
        found = self.containers()
        unique_ids(found)
        name_kubernetes_containers(found)

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
        depth = len(parse_nspid(status))
        if depth <= 1:
            return None  # in our own namespace (its NSpid has one entry), whatever ns says
        init = self._walk_to_init(pid, status, depth)
        if init is None:
            init = self._init_by_cgroup(pid, depth, ns)
        if init is None:
            return self._without_init(pid, ns)
        return self._container_at(init[0], init[1], ns)

    def _without_init(self, pid: int, ns: int | None) -> Container:
        """The container of a process whose init cannot be told (its parents are outside
        and, without the namespace link, several inits could be its): still a
        container, named by its own cgroup when that is not ours, with init_pid 0."""
        hierarchies = parse_cgroup(_read(f"{PROC}/{pid}/cgroup") or "")
        found = cgroup_path_of(hierarchies)
        mine = cgroup_path_of(parse_cgroup(_read(f"{PROC}/self/cgroup") or ""))
        if found is None or found == mine:
            key = f"pidns:{ns}" if ns is not None else f"nspid:{pid}"
            c = Container(key, None, None, ns, 0, "/" if found is None else found[1])
        else:
            delegated = delegated_to(*found)
            if delegated is not None:
                cid: str = f"user:{delegated[0]}/{delegated[1]}".rstrip("/")
                runtime, pod = None, None
            else:
                cid, runtime, pod = classify(found[1])
            c = Container(cid, runtime, pod, ns, 0, found[1], hierarchies, own_cgroup=True)
        known = self._by_key.get(c.key if ns is not None else f"cgroup:{c.cgroup}")
        if known is not None:
            return known
        self._by_key[c.key if ns is not None else f"cgroup:{c.cgroup}"] = c
        return c

    def _container_at(self, init: int, init_status: str, ns: int | None) -> Container:
        known = self._by_init.get(init)
        if known is not None:
            return known
        if ns is None:
            ns = read_pidns(init)
        c = self._describe(init, ns, init_status)
        self._by_key[c.key] = c
        self._by_init[init] = c
        return c

    def _walk_to_init(self, pid: int, status: str, depth: int) -> tuple[int, str] | None:
        """(host pid, status) of PID 1 of pid's namespace, among pid's ancestors.

        A parent with the same NSpid depth is in the same namespace: a process can only
        be born in its parent's namespace or one below it, and only adopted by an
        ancestor. None when the walk leaves the namespace first.
        """
        seen = set()
        cur, text = pid, status
        while cur not in seen:
            seen.add(cur)
            nspid = parse_nspid(text)
            if len(nspid) != depth:
                return None
            if nspid[-1] == 1:
                return cur, text
            known = self._by_pid.get(cur)
            if known is not None:
                return known.init_pid, ""
            parent = parse_ppid(text)
            if not parent:
                return None
            parent_text = _read(f"{PROC}/{parent}/status")
            if parent_text is None:
                return None
            cur, text = parent, parent_text
        return None

    def _init_by_cgroup(self, pid: int, depth: int, ns: int | None) -> tuple[int, str] | None:
        """PID 1 of pid's namespace, for a process whose parents are outside it.

        A process entered into a container is put in the container's cgroup (or one
        below it), so the init is among the pids of pid's cgroup or of one above it: the
        first whose NSpid has pid's depth and ends in 1 (and, where the links can be
        read, in pid's namespace, compared first: a readlink is cheaper than a status).
        Without the link, the init must be the only such candidate there; else one pass
        over every process's status decides.
        """
        found = cgroup_path_of(parse_cgroup(_read(f"{PROC}/{pid}/cgroup") or ""))
        base = None if found is None else mount_of(found[0])
        if found is not None and base is not None:
            elements = [e for e in found[1].split("/") if e]
            if ".." not in elements and "." not in elements:
                for level in range(len(elements), -1, -1):
                    directory = "/".join([base, *elements[:level]])
                    inits = self._inits_in(directory, depth, ns)
                    if len(inits) == 1:
                        return inits[0]
                    if inits:
                        break  # ambiguous here: only the one pass can tell
        matches = [init for init, init_ns in self._every_init(depth) if ns is None or init_ns == ns]
        if len(matches) == 1:
            return matches[0], _read(f"{PROC}/{matches[0]}/status") or ""
        return None

    def _members(self, directory: str) -> dict[int | None, list[str]]:
        """The pids of a cgroup (at most CGROUP_CANDIDATES) by namespace inode (None
        where unreadable), read once."""
        members = self._cgroup_members.get(directory)
        if members is None:
            members = {}
            procs = (_read(f"{directory}/cgroup.procs", 1 << 20) or "").split()
            for name in procs[:CGROUP_CANDIDATES]:
                members.setdefault(read_pidns(name), []).append(name)
            self._cgroup_members[directory] = members
        return members

    def _inits_in(self, directory: str, depth: int, ns: int | None) -> list[tuple[int, str]]:
        """`_inits_among` a cgroup's members; without a namespace to match, kept per
        cgroup and depth (every entered process asks the same question)."""
        if ns is not None:
            return self._inits_among(self._members(directory), depth, ns)
        key = (directory, depth)
        found = self._unmatched_inits.get(key)
        if found is None:
            found = self._unmatched_inits[key] = self._inits_among(
                self._members(directory), depth, None
            )
        return found

    def _inits_among(
        self, members: dict[int | None, list[str]], depth: int, ns: int | None
    ) -> list[tuple[int, str]]:
        """(host pid, status) of the namespace inits at NSpid depth among members, only
        those in ns when it is known."""
        out = []
        if ns is not None:
            names = members.get(ns, [])
        else:
            names = [name for group in members.values() for name in group]
        for name in names:
            status = self._statuses.get(name)
            if status is None:
                status = self._statuses[name] = _read(f"{PROC}/{name}/status") or ""
            nspid = parse_nspid(status)
            if len(nspid) == depth and nspid[-1] == 1:
                out.append((int(name), status))
                if ns is not None:
                    break  # one init per namespace
        return out

    def _every_init(self, depth: int) -> list[tuple[int, int | None]]:
        """(host pid, namespace inode or None) of every namespace init at NSpid depth:
        one read of every process's status, made once and kept."""
        if self._all_inits is None:
            self._all_inits = {}
            for name in os.listdir(PROC):
                if name[0] not in "123456789":
                    continue
                nspid = parse_nspid(_read(f"{PROC}/{name}/status") or "")
                if len(nspid) > 1 and nspid[-1] == 1:
                    entry = (int(name), read_pidns(name))
                    self._all_inits.setdefault(len(nspid), []).append(entry)
        return self._all_inits.get(depth, [])

    def _describe(self, init: int, ns: int | None, status: str) -> Container:
        """The container whose PID 1 is host pid init (see `describe`); a namespace
        without a cgroup of its own inside another container takes that one's id."""
        c = describe(init, ns, status)
        if c.own_cgroup:
            return c
        ppid = parse_ppid(status or _read(f"{PROC}/{init}/status") or "")
        outer = self.container_of(ppid) if ppid else None
        if outer is not None and outer is not c:
            c.outer = outer
            c.id, c.runtime, c.pod = outer.id, outer.runtime, outer.pod
        return c


# --------------------------------------------------------------------------- kubernetes

K8S_LOG_DIR = "/var/log/containers"
# Tests point this at a directory laid out as kubelet does.
K8S_LOG_DIR_ENV = "ZOMBIECTL_K8S_LOG_DIR"


def parse_kubelet_log_name(name: str) -> tuple[str, str, str, str] | None:
    """(container id, namespace, pod, container) from kubelet's symlink name
    ``<pod>_<namespace>_<container>-<id>.log``, or None for any other name.

    Pod, namespace and container names are DNS labels or subdomains: none holds "_",
    and the id (hex) holds no "-", so the split is exact.
    """
    if not name.endswith(".log"):
        return None
    head, sep, cid = name[: -len(".log")].rpartition("-")
    parts = head.split("_")
    if not sep or len(parts) != 3 or not all(parts) or not cid.isalnum() or not cid.isascii():
        return None
    pod, namespace, container = parts
    return cid, namespace, pod, container


def kubernetes_names(directory: str | None = None) -> dict[str, tuple[str, str, str]]:
    """Container id -> (namespace, pod, container) from kubelet's log symlinks.

    Only the names are read, never the links' targets; an unreadable or missing
    directory (not a Kubernetes node, or not mounted) gives nothing.
    """
    if directory is None:
        directory = os.environ.get(K8S_LOG_DIR_ENV) or K8S_LOG_DIR
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    out: dict[str, tuple[str, str, str]] = {}
    for name in names:
        parsed = parse_kubelet_log_name(name)
        if parsed is not None:
            out[parsed[0]] = parsed[1:]
    return out


def name_kubernetes_containers(containers: list[Container]) -> None:
    """Set the Kubernetes names of the containers whose id kubelet's logs name."""
    if not containers:
        return
    names = kubernetes_names()
    for c in containers:
        known = names.get(c.id)
        if known is not None:
            c.k8s_namespace, c.k8s_pod, c.k8s_container = known


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
    found = cgroup_path_of(hierarchies)
    key = f"pidns:{ns}" if ns is not None else f"init:{init}"
    if not status:
        status = _read(f"{PROC}/{init}/status") or ""
    if found is None or _same_cgroup_as_parent(parse_ppid(status), found[1], own):
        path = "/" if found is None else found[1]
        return Container(key, None, None, ns, init, path, hierarchies)
    hierarchy, path = found
    delegated = delegated_to(hierarchy, path)
    if delegated is not None:
        cid: str = f"user:{delegated[0]}/{delegated[1]}".rstrip("/")
        runtime, pod = None, None
    else:
        cid, runtime, pod = classify(path)
    return Container(cid, runtime, pod, ns, init, path, hierarchies, own_cgroup=True)


def delegated_to(hierarchy: str, path: str) -> tuple[int, str] | None:
    """(uid, the path below it) when a cgroup on path is owned by a user other than
    root: a subtree delegated to that user, whose names are the user's to choose.

    Where the cgroup cannot be reached (a path out of the reader's cgroup namespace),
    only the names tell (`classify`).
    """
    elements = [e for e in path.split("/") if e]
    base = mount_of(hierarchy)
    if base is None or ".." in elements:
        return None
    directory = base
    for i, element in enumerate(elements):
        directory = f"{directory}/{element}"
        try:
            uid = os.lstat(directory).st_uid
        except OSError:
            return None
        if uid != 0:
            return uid, "/".join(elements[i:])
    return None


def _same_cgroup_as_parent(ppid: int | None, path: str, own: str = "") -> bool:
    """True when the init only inherited its parent's cgroup (no cgroup of its own).

    own: the init's cgroup file, when read: the same text is the same cgroups.
    """
    if not ppid:
        return False
    parent = _read(f"{PROC}/{ppid}/cgroup")
    if parent is None:
        return False
    if parent == own:
        return True
    found = cgroup_path_of(parse_cgroup(parent))
    return found is not None and found[1] == path


def all_containers() -> list[Container]:
    """Every PID namespace other than ours with a visible PID 1, ids made unique.

    A namespace's PID 1 is the process whose ``NSpid`` has more than one entry and
    ends in 1; this reads every process's status, so only `doctor --containers` uses it.
    """
    attributor = Attributor()
    found: list[Container] = []
    for name in os.listdir(PROC):
        if name[0] not in "123456789":
            continue
        nspid = parse_nspid(_read(f"{PROC}/{name}/status") or "")
        if len(nspid) < 2 or nspid[-1] != 1:
            continue
        c = attributor.container_of(int(name))
        if c is not None and c.init_pid == int(name):
            found.append(c)
    attributor.finish()
    found.sort(key=lambda c: c.init_pid)
    return found
