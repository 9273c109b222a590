"""One scan of the process table, and the children of one process.

On Linux the table is read straight from ``/proc/PID/stat`` with ``os.open``/``os.read``
(one small read a process, spread over one forked reader per CPU on big tables): psutil builds a
Python object and reads several files per process, which is several times slower than
``ps`` on a table of 10,000 processes. psutil remains the portable path (no ``/proc``)
and the source of details such as a user name or a command line.

Processes come and go during a scan: a process that vanishes between ``listdir`` and
``open`` is skipped, never an error.

A name is whatever bytes its process chose (``prctl(PR_SET_NAME)``): it is decoded with
``zombiectl.untrusted.from_proc``, so bytes that are not UTF-8 read as ``\\xNN`` text
(never U+FFFD), and psutil's names are brought to the same form with ``for_json``.

Every reader parses ``/proc/PID/stat`` through `Stat` (a doctest the suite runs):

    >>> stat = Stat(b"4242 (a) (b)) Z 17 4242 4242 0 -1 4194636 0 0 0 0 0 0 0 0 20 0 1 0 987 0")
    >>> stat.name, stat.state, stat.ppid, stat.flags, stat.starttime
    ('a) (b)', 'Z', 17, 4194636, 987)
    >>> list(Stat.zombies([(4242, stat.raw)]))
    [(4242, 17)]
"""

from __future__ import annotations

import os
import sys
import time

from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc.files import PROC, SMALL, bcat, cat, have_proc, pid_path
from zombiectl.proc.records import ZOMBIE, ParentZombies, ProcInfo, is_zombie_state
from zombiectl.untrusted import for_json, from_proc
from zombiectl.validate import beyond_any_pid

# typing and collections.abc cost ~7 ms to import on the fast path of `list`; mypy
# treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

# Below this many processes a second reader costs more than it saves.
_PARALLEL_THRESHOLD = 3000


class Snapshot:
    """Every process seen by one scan, keyed by pid, and how long the scan took.

    On the /proc path a snapshot keeps each process's raw stat line and parses only
    what is asked for: `list` needs every zombie but, of the other processes, only the
    parents' names, and parsing costs as much as reading on a big table.
    """

    __slots__ = ("_parsed", "_raw", "duration", "taken_at")

    def __init__(
        self,
        procs: dict[int, ProcInfo] | None,
        duration: float,
        taken_at: float,
        raw: dict[int, bytes] | None = None,
    ) -> None:
        self._parsed = procs
        self._raw = raw if raw is not None else {}
        self.duration = duration
        self.taken_at = taken_at

    @property
    def procs(self) -> dict[int, ProcInfo]:
        if self._parsed is None:
            self._parsed = {pid: Stat.info(pid, raw) for pid, raw in self._raw.items()}
        return self._parsed

    def get(self, pid: int) -> ProcInfo | None:
        if self._parsed is not None:
            return self._parsed.get(pid)
        raw = self._raw.get(pid)
        return None if raw is None else Stat.info(pid, raw)

    def __len__(self) -> int:
        return len(self._parsed) if self._parsed is not None else len(self._raw)

    def _zombie_pids(self) -> Iterator[tuple[int, int]]:
        """(pid, ppid) of each zombie, without building a ProcInfo for it."""
        if self._parsed is not None:
            for p in self._parsed.values():
                if is_zombie_state(p[2]):
                    yield p[0], p[1]
            return
        yield from Stat.zombies(self._raw.items())

    def zombies_by_parent(self, only_parent: int | None = None) -> list[ParentZombies]:
        """Zombies grouped by parent, the biggest leaker first (ties: lower pid first)."""
        groups: dict[int, list[int]] = {}
        get = groups.get  # one lookup a zombie: this loop runs 10,000 times on big tables
        for pid, ppid in self._zombie_pids():
            if only_parent is None or ppid == only_parent:
                pids = get(ppid)
                if pids is None:
                    groups[ppid] = [pid]
                else:
                    pids.append(pid)
        out = []
        for ppid, pids in groups.items():
            pids.sort()
            parent = self.get(ppid)
            name = parent[3] if parent is not None else ("?" if ppid else "(outside namespace)")
            out.append(ParentZombies(ppid, name, user_of_pid(ppid), pids))
        out.sort(key=lambda g: (-len(g[3]), g[0]))
        return out


def count_states(procs: Iterable[ProcInfo]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in procs:
        counts[p[2]] = counts.get(p[2], 0) + 1
    return counts


def parse_nspid(text: str) -> tuple[int, ...]:
    """The pids of the `NSpid:` line of a status or pidfd fdinfo text, outermost first;
    empty when there is none (or it is not numbers).

    The kernel escapes newlines in the `Name:` line, so a process cannot forge this line;
    but not every character `str.splitlines` splits at ("\x1c", say): only "\n" ends a
    line here.
    """
    if text.startswith("NSpid:"):
        start = 6
    else:
        start = text.find("\nNSpid:") + 7
        if start == 6:
            return ()
    end = text.find("\n", start)
    try:
        return tuple(int(x) for x in text[start : end if end >= 0 else None].split())
    except ValueError:
        return ()


# --------------------------------------------------------------------------- /proc


class Stat:
    """One line of ``/proc/PID/stat``, by field name: the one parser of that file.

    "PID (COMM) S PPID PGRP ...": COMM may hold spaces and parentheses, so it ends at the
    *last* ')'. Fields are read on demand from the bytes after it (proc(5) numbers them
    from 1: state is 3, ppid 4, pgrp 5, flags 9, starttime 22), so a scan that wants only
    the state pays for no split.
    """

    __slots__ = ("_end", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._end = raw.rfind(b")")
        if self._end < 0 or len(raw) < self._end + 4:
            raise ValueError("not a /proc/PID/stat line")

    @property
    def name(self) -> str:
        return from_proc(self.raw[self.raw.find(b"(") + 1 : self._end])

    @property
    def state(self) -> str:
        return chr(self.raw[self._end + 2])

    @property
    def ppid(self) -> int:
        start = self._end + 4
        return int(self.raw[start : self.raw.index(b" ", start)])

    @property
    def pgrp(self) -> int:
        return self._field(5)

    @property
    def flags(self) -> int:
        return self._field(9)

    @property
    def starttime(self) -> int:
        """Clock ticks after boot: with the pid, who a process is."""
        return self._field(22)

    def _field(self, number: int) -> int:
        # Field 3 (the state) is the first after the ')'.
        return int(self.raw[self._end + 2 :].split(b" ", number - 2)[number - 3])

    # The scan's two hot paths, one call per process on tables of 10,000: the same
    # reading as the properties above, without building a Stat.

    @staticmethod
    def info(pid: int, raw: bytes) -> ProcInfo:
        """pid, ppid, state and name as a ProcInfo."""
        end = raw.rfind(b")")
        ppid = int(raw[end + 4 : raw.index(b" ", end + 4)])
        name = from_proc(raw[raw.find(b"(") + 1 : end])
        return tuple.__new__(ProcInfo, (pid, ppid, chr(raw[end + 2]), name))

    @staticmethod
    def zombies(lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, int]]:
        """(pid, ppid) of each zombie among (pid, stat line) pairs, in one loop."""
        zombie = _ZOMBIE_BYTE
        for pid, raw in lines:
            end = raw.rfind(b")")
            if raw[end + 2] == zombie:
                yield pid, int(raw[end + 4 : raw.index(b" ", end + 4)])


_ZOMBIE_BYTE = ord(ZOMBIE)


def _read_raw(names: list[str], out: list[tuple[int, bytes]]) -> None:
    o, r, c, rd = os.open, os.read, os.close, os.O_RDONLY
    append = out.append
    for name in names:
        try:
            fd = o(PROC + "/" + name + "/stat", rd)
        except OSError:  # gone since listdir, or hidden by hidepid
            continue
        try:
            raw = r(fd, 1024)
        except OSError:
            continue
        finally:
            c(fd)
        if raw:
            append((int(name), raw))


def _read_stats(names: list[str], out: list[ProcInfo]) -> None:
    raw: list[tuple[int, bytes]] = []
    _read_raw(names, raw)
    out.extend(Stat.info(pid, line) for pid, line in raw)


def _scan_proc(workers: int) -> dict[int, bytes]:
    names = [n for n in os.listdir(PROC) if n[0] in "123456789"]
    out: list[tuple[int, bytes]] = []
    if workers <= 1 or len(names) < _PARALLEL_THRESHOLD:
        _read_raw(names, out)
        return dict(out)
    # Reading /proc is kernel time that scales over cores, but threads serialise on the
    # GIL between syscalls (measured: 2 threads save ~25%, 3 are slower than 1). Forked
    # readers do not: each reads its slice and sends the raw lines back over a pipe.
    readers = []
    for i in range(1, workers):
        reader = _fork_reader(names[i::workers])
        if reader is None:  # cannot fork here (no processes left, threads running)
            _read_raw(names[i::workers], out)
        else:
            readers.append(reader)
    _read_raw(names[0::workers], out)
    for pid, fd in readers:
        out.extend(_collect_reader(pid, fd))
    return dict(out)


def _fork_reader(names: list[str]) -> tuple[int, int] | None:
    """Fork a process that reads names' stat lines and writes them, NUL-separated, to a pipe."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return None  # forking a threaded process can deadlock the child
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the reader: no Python-level clean-up, no buffers to flush
        status = 1
        try:
            os.close(r)
            part: list[tuple[int, bytes]] = []
            _read_raw(names, part)
            data = memoryview(b"\0".join(raw for _, raw in part))
            while data:
                data = data[os.write(w, data) :]
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    return pid, r


def _collect_reader(pid: int, fd: int) -> list[tuple[int, bytes]]:
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        # The reader has closed its end, so it has exited or is about to: reap it now
        # (a signal does not interrupt the wait: Python retries it, PEP 475).
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    data = b"".join(chunks)
    if not data:
        return []
    # A stat line starts with the pid and never holds a NUL (comm cannot).
    return [(int(raw[: raw.index(b" ")]), raw) for raw in data.split(b"\0")]


def _default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


PSUTIL_STATES = {
    "running": "R",
    "sleeping": "S",
    "disk-sleep": "D",
    "stopped": "T",
    "tracing-stop": "t",
    "zombie": "Z",
    "dead": "X",
    "wake-kill": "K",
    "waking": "W",
    "idle": "I",
    "locked": "L",
    "waiting": "W",
    "parked": "P",
}


def _psutil_info(p: object) -> ProcInfo | None:
    info = p.info  # type: ignore[attr-defined]
    if info.get("ppid") is None:
        return None
    return ProcInfo(
        info["pid"],
        info["ppid"],
        PSUTIL_STATES.get(info.get("status") or "", "?"),
        for_json(info.get("name") or "?"),
    )


def _scan_psutil() -> list[ProcInfo]:
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "ppid", "status", "name"]):
        info = _psutil_info(p)
        if info is not None:
            out.append(info)
    return out


def scan(workers: int | None = None, use_proc: bool | None = None) -> Snapshot:
    """Read every process once (`workers` readers on big tables: default one per CPU, up to 4)."""
    started = time.perf_counter()
    if use_proc is None:
        use_proc = have_proc()
    if use_proc:
        raw = _scan_proc(_default_workers() if workers is None else workers)
        return Snapshot(None, time.perf_counter() - started, time.time(), raw=raw)
    procs = {p[0]: p for p in _scan_psutil()}
    return Snapshot(procs, time.perf_counter() - started, time.time())


def read_proc(pid: int) -> ProcInfo | None:
    """One process, or None when it does not exist (any more)."""
    if have_proc():
        raw = bcat(pid_path(pid, "stat"))
        return Stat.info(pid, raw) if raw else None
    import psutil

    try:
        p = psutil.Process(pid)
        with p.oneshot():
            state = PSUTIL_STATES.get(p.status(), "?")
            return ProcInfo(pid, p.ppid(), state, for_json(p.name()))
    except psutil.NoSuchProcess:
        return None


def require_process(pid: int) -> ProcInfo:
    """The process, or NoSuchProcess (exit 3) for a pid that does not exist."""
    info = read_proc(pid)
    if info is None:
        if _exists_but_hidden(pid):
            raise PermissionDenied(f"cannot read process {pid}: permission denied")
        raise NoSuchProcess(pid)
    return info


def _exists_but_hidden(pid: int) -> bool:
    if beyond_any_pid(pid):  # os.kill would raise OverflowError past a C int
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not os.path.exists(pid_path(pid))


# --------------------------------------------------------------------------- children


def _children_files(pid: int) -> Iterator[str] | None:
    try:
        tids = os.listdir(pid_path(pid, "task"))
    except (FileNotFoundError, ProcessLookupError):
        raise NoSuchProcess(pid) from None
    except PermissionError:
        raise PermissionDenied(f"cannot read process {pid}: permission denied") from None
    if not os.path.exists(pid_path(pid, "task", tids[0] if tids else str(pid), "children")):
        return None  # kernel without CONFIG_PROC_CHILDREN
    return (pid_path(pid, "task", tid, "children") for tid in tids)


def child_pids(pid: int) -> list[int]:
    """Pids of pid's children, zombies included, in O(children).

    ``/proc/PID/task/TID/children`` lists the children each thread forked (and the
    orphans a subreaper adopted); a child belongs to the thread that forked it, so
    every thread is read. Falls back to a full scan where the file does not exist.
    """
    if not have_proc():
        return [p.pid for p in scan().procs.values() if p.ppid == pid]
    files = _children_files(pid)
    if files is None:
        return [p[0] for p in scan().procs.values() if p[1] == pid]
    pids: list[int] = []
    for path in files:
        try:
            with open(path, "rb") as f:
                pids.extend(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # that thread just exited
    return pids


def read_many(
    pids: Iterable[int], known_zombies: Mapping[int, ProcInfo] | None = None
) -> list[ProcInfo]:
    """ProcInfo for each pid that still exists.

    `known_zombies` are zombies seen by an earlier read. A zombie keeps its pid until it
    is reaped and can never change state again, so when its pid is listed as a child of
    the same parent it is still that zombie: its stat need not be read again. This is
    what keeps a `watch` tick cheap on a parent with a thousand zombies. (The one way
    to be fooled is a zombie reaped and its pid reused by a new child of the same
    parent between two reads, which needs the whole pid space to wrap in between.)
    """
    out: list[ProcInfo] = []
    if known_zombies:
        unknown = []
        for pid in pids:
            z = known_zombies.get(pid)
            if z is None:
                unknown.append(pid)
            else:
                out.append(z)
        pids = unknown
    if not have_proc():
        infos = (read_proc(pid) for pid in pids)
        out.extend(i for i in infos if i is not None)
        return out
    _read_stats([str(p) for p in pids], out)
    return out


def children_of(pid: int, known_zombies: Mapping[int, ProcInfo] | None = None) -> list[ProcInfo]:
    """pid's children (zombies included), sorted by pid. NoSuchProcess if pid is gone.

    `known_zombies`: see `read_many`; only those whose ppid is pid are trusted.
    """
    kids = read_many(child_pids(pid), known_zombies)
    # A pid read from the children file may have been reaped and reused in between.
    kids = [k for k in kids if k[1] == pid]
    kids.sort()
    return kids


def descendants_of(pid: int, known_zombies: Mapping[int, ProcInfo] | None = None) -> list[ProcInfo]:
    """Every descendant of pid (children, grandchildren, ...), breadth first."""
    out: list[ProcInfo] = []
    frontier = [pid]
    seen = {pid}
    while frontier:
        nxt: list[int] = []
        for parent in frontier:
            try:
                kids = children_of(parent, known_zombies)
            except (NoSuchProcess, PermissionDenied):
                if parent == pid:
                    raise
                continue
            for k in kids:
                if k[0] not in seen:
                    seen.add(k[0])
                    out.append(k)
                    if not is_zombie_state(k[2]):
                        nxt.append(k[0])
        frontier = nxt
    return out


# --------------------------------------------------------------------------- details


_user_cache: dict[int, str] = {}


def user_name(uid: int) -> str:
    name = _user_cache.get(uid)
    if name is None:
        try:
            import pwd

            name = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            name = str(uid)
        _user_cache[uid] = name
    return name


def uid_of_pid(pid: int) -> int | None:
    if have_proc():
        try:
            return os.stat(pid_path(pid)).st_uid
        except OSError:
            return None
    import psutil

    try:
        return int(psutil.Process(pid).uids().real)
    except psutil.Error:  # gone, or not ours to read
        return None


def user_of_pid(pid: int) -> str:
    if pid <= 0:
        return "?"
    uid = uid_of_pid(pid)
    return "?" if uid is None else user_name(uid)


# --------------------------------------------------------------------------- groups


def process_group(pgid: int) -> list[ProcInfo]:
    """Every process whose process group is pgid, zombies included (one scan).

    `demo` puts each lab in its own group and uses this to prove, after clean-up,
    that nothing of the lab is left.
    """
    out: list[ProcInfo] = []
    if not have_proc():
        for p in scan().procs.values():
            try:
                if os.getpgid(p.pid) == pgid:
                    out.append(p)
            except OSError:
                continue
        return out
    for name in os.listdir(PROC):
        if name[0] not in "123456789":
            continue
        raw = bcat(pid_path(name, "stat"))
        if raw and Stat(raw).pgrp == pgid:
            out.append(Stat.info(int(name), raw))
    out.sort()
    return out


# --------------------------------------------------------------------------- identity


def ancestors_of(pid: int) -> list[ProcInfo]:
    """pid's parent, grandparent, ... up to the top of this pid namespace (nearest first)."""
    out: list[ProcInfo] = []
    seen = {pid}
    info = read_proc(pid)
    while info is not None and info[1] > 0 and info[1] not in seen:
        seen.add(info[1])
        info = read_proc(info[1])
        if info is not None:
            out.append(info)
    return out


def wait_channel(pid: int) -> str | None:
    """The kernel function pid sleeps in (``/proc/PID/wchan``), e.g. ``inet_csk_accept``.

    None when the process is gone or the kernel hides the symbol ("0"). ``demo server``
    uses it to see that the server is back in ``accept()``, done with any signal.
    """
    text = cat(pid_path(pid, "wchan"))
    text = text.strip() if text is not None else None
    return text if text and text != "0" else None


ARGV_MAX = 64 << 10  # a command line is shown, never parsed whole: enough for any display


def read_cmdline(pid: int | str, size: int = SMALL) -> bytes | None:
    """pid's raw command line (NUL-separated, as the process left it), or None."""
    return bcat(pid_path(pid, "cmdline"), size)


def read_argv(pid: int, size: int = SMALL) -> list[str]:
    """pid's command line as words ([] when gone, hidden, or a kernel thread).

    Any byte a process put there reads as `from_proc` decodes it; empty words in the
    middle stay (`cmd "" x`), the NULs a process left at the end do not.
    """
    raw = read_cmdline(pid, size)
    if not raw:
        return []
    return [from_proc(part) for part in raw.rstrip(b"\0").split(b"\0")]


def read_exe(pid: int) -> str | None:
    """Where pid's executable link points, or None when it cannot be read."""
    try:
        return os.readlink(pid_path(pid, "exe"))
    except OSError:
        return None


def exe_path(pid: int) -> str:
    """The path that opens pid's executable itself, even once deleted or in another mount
    namespace (a container's): read it, never execute it."""
    return pid_path(pid, "exe")


def pid_exists(pid: int) -> bool:
    """True while pid names a process, a zombie included (its /proc entry stays until it
    is reaped)."""
    return os.path.exists(pid_path(pid))


def count_tasks(uid: int) -> tuple[int | None, int | None]:
    """(pids in use, pids used by uid): every thread holds a pid, and so does a zombie.

    A process's /proc/PID/task has one link per thread plus two; a zombie has none
    left, but still holds its own pid. RLIMIT_NPROC counts the threads of a user.
    """
    try:
        names = os.listdir(PROC)
    except OSError:
        return None, None
    total = mine = 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            owner = os.stat(pid_path(name)).st_uid
            n = max(os.stat(pid_path(name, "task")).st_nlink - 2, 1)
        except OSError:
            continue
        total += n
        if owner == uid:
            mine += n
    return total, mine


def open_fds() -> list[int]:
    """This process's open descriptors (the one listing them is among them, closed by now)."""
    return [int(name) for name in os.listdir(pid_path("self", "fd"))]


SIGNAL_MASKS = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")


def parse_signal_masks(status_text: str) -> dict[str, int] | None:
    """The signal masks a /proc/PID/status text shows (pending to the thread and to the
    process, blocked, ignored, caught), bit N-1 for signal N; None when one is garbled."""
    masks: dict[str, int] = {}
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key in SIGNAL_MASKS:
            try:
                masks[key] = int(value.strip(), 16)
            except ValueError:
                return None
    return masks


def signal_masks(pid: int) -> dict[str, int] | None:
    """pid's signal masks (see `parse_signal_masks`), or None when it cannot be read."""
    text = cat(pid_path(pid, "status"))
    return None if text is None else parse_signal_masks(text)


def signal_pending(pid: int, signum: int) -> bool:
    """True while signal `signum` waits, blocked, for the process (``ShdPnd``: its
    handler has not run yet)."""
    masks = signal_masks(pid)
    return bool(masks and masks.get("ShdPnd", 0) >> (signum - 1) & 1)
