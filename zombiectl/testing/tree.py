"""The test session's own process tree: read it, describe a process, collect leftovers.

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

One read walks down from the session through ``/proc/PID/task/*/children`` (the
kernel's list of each thread's children) and reads one ``stat`` line per process, so its
cost grows with the session's descendants, never with the size of the process table.
Every process is known by its pid *and* its start time: a pid reused by an unrelated
process is a different key, so it is never blamed and never signalled.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc.files import pid_path
from zombiectl.proc.identity import Target, send_signal_safely
from zombiectl.proc.table import Stat, child_pids, is_zombie_state
from zombiectl.testing import forks
from zombiectl.untrusted import display, from_proc

Key = tuple[int, int]  # (pid, start time in clock ticks after boot)


class Proc(NamedTuple):
    pid: int
    ppid: int
    state: str
    name: str
    starttime: int

    @property
    def key(self) -> Key:
        return (self.pid, self.starttime)

    @property
    def is_zombie(self) -> bool:
        return is_zombie_state(self.state)


def read_stat(pid: int) -> Proc | None:
    """pid's stat line as a Proc, or None once it has gone (or was never readable)."""
    try:
        fd = os.open(pid_path(pid, "stat"), os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        stat = Stat(raw)
        return Proc(pid, stat.ppid, stat.state, stat.name, stat.starttime)
    except (ValueError, IndexError):  # empty or cut short: the process went in between
        return None


def read_tree(root: int) -> list[Proc]:
    """Every descendant of root, parents before their children (breadth first)."""
    out: list[Proc] = []
    frontier = [root]
    seen = {root}
    while frontier:
        nxt: list[int] = []
        for parent in frontier:
            kids = _children(parent)
            for pid in kids:
                proc = read_stat(pid) if pid not in seen else None
                # A pid listed as a child may have been reaped and reused since.
                if proc is None or proc.ppid != parent:
                    continue
                seen.add(pid)
                out.append(proc)
                if not proc.is_zombie:
                    nxt.append(pid)
        frontier = nxt
    return out


def _children(pid: int) -> list[int]:
    """pid's children from each thread's ``children`` file ([] once pid has gone).

    The same source as `table.child_pids`, read with bare os calls: this runs once per
    live descendant after every test. Where the kernel lacks the file, child_pids scans.
    """
    try:
        tids = os.listdir(pid_path(pid, "task"))
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            fd = os.open(pid_path(pid, "task", tid, "children"), os.O_RDONLY)
        except FileNotFoundError:
            if os.path.exists(pid_path(pid, "task", tid)):
                return _children_by_scan(pid)  # kernel without CONFIG_PROC_CHILDREN
            continue  # that thread just exited
        except OSError:
            continue
        try:
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
        except OSError:
            data = b""
        finally:
            os.close(fd)
        out.extend(map(int, data.split()))
    return out


def _children_by_scan(pid: int) -> list[int]:
    try:
        return child_pids(pid)
    except (NoSuchProcess, PermissionDenied):
        return []


# --------------------------------------------------------------------------- describe


def cmdline(pid: int) -> str:
    """pid's command line as one safe display line ('' for a zombie or a gone process)."""
    try:
        with open(pid_path(pid, "cmdline"), "rb") as f:
            raw = f.read(4096)
    except OSError:
        return ""
    return display(from_proc(raw.rstrip(b"\0").replace(b"\0", b" ")))


def describe(proc: Proc, parent_name: str) -> str:
    """One line: pid, name, zombie or running (state), parent, command line."""
    what = "zombie" if proc.is_zombie else "still running"
    line = (
        f"pid {proc.pid} ({display(proc.name)}): {what}, state {proc.state}, "
        f"parent {proc.ppid} ({display(parent_name)})"
    )
    args = "" if proc.is_zombie else cmdline(proc.pid)
    return f"{line}, cmdline: {args}" if args else line


# --------------------------------------------------------------------------- collect


def _signal(proc: Proc, sig: int) -> None:
    """Signal proc only while its pid still names it (pidfd, then a start-time check)."""
    send_signal_safely(Target(proc.pid, proc.starttime, proc.name), sig)


def _reap(proc: Proc, me: int) -> None:
    """Reap proc by pid if it is a zombie child of this process (never waitpid(-1))."""
    if proc.ppid != me or not proc.is_zombie:
        return
    try:
        os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pass  # reaped meanwhile by its owner (a Popen, a Pool's thread)


def stop_pools(pids: Iterable[int]) -> None:
    """Terminate the parent side of every multiprocessing Pool in this process whose
    workers are among pids: its handler thread would start a new worker for each one
    killed, for as long as the Pool object lives.
    """
    pool_mod = sys.modules.get("multiprocessing.pool")
    if pool_mod is None:
        return
    wanted = set(pids)
    for obj in gc.get_objects():
        if not isinstance(obj, pool_mod.Pool):
            continue
        workers = {getattr(w, "pid", None) for w in getattr(obj, "_pool", ())}
        if workers & wanted:
            try:
                obj.terminate()
            except Exception:  # a pool half torn down by its owner; its workers are killed below
                pass


def collect(
    victims: set[Key],
    me: int,
    timeout: float = 5.0,
    owners: Mapping[int, object] | None = None,
) -> list[Proc]:
    """Kill what runs and reap what is dead among victims and their descendants.

    Order: multiprocessing Pools in this process are terminated first (see stop_pools);
    then every victim still running is frozen with SIGSTOP, parents first, so that no
    parent can see a child die and start a new one; then all of them get SIGKILL; then
    this process reaps the zombies that are, or have become, its children: through its
    owner object's own ``poll()`` where `owners` ({pid: Popen}) names one, so that the
    owner reads the true status (-9), never a made-up 0. Descendants
    a victim started meanwhile are victims too. Returns what could not be cleared
    (a zombie whose parent is not ours to reap, or a process that would not die).
    """
    victims = set(victims)
    stop_pools(pid for pid, _ in victims)
    deadline = time.monotonic() + timeout
    while True:
        left = _victims_in(read_tree(me), victims)
        live = [p for p in left if not p.is_zombie]
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for proc in live:
                _signal(proc, sig)
        for proc in left:
            owner = owners.get(proc.pid) if owners else None
            if owner is not None and proc.ppid == me and proc.is_zombie:
                forks.let_owner_reap(owner)
            else:
                _reap(proc, me)
        pending = [p for p in left if not p.is_zombie or p.ppid == me or p.ppid in _pids(left)]
        if not pending or time.monotonic() >= deadline:
            return [p for p in _victims_in(read_tree(me), victims)]
        time.sleep(0.005)


def kill(procs: list[Proc]) -> None:
    """Freeze, then kill, processes outside this process's tree (their reaper is not
    pytest): known by pid and start time, so a reused pid is never signalled."""
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for proc in procs:
            _signal(proc, sig)


def _pids(procs: list[Proc]) -> set[int]:
    return {p.pid for p in procs}


def _victims_in(tree: list[Proc], victims: set[Key]) -> list[Proc]:
    """The victims still in tree, adding each one's descendants to victims (tree is
    parents first, so a child is seen after its parent)."""
    by_pid = {p.pid: p for p in tree}
    out = []
    for proc in tree:
        parent = by_pid.get(proc.ppid)
        if proc.key in victims or (parent is not None and parent.key in victims):
            victims.add(proc.key)
            out.append(proc)
    return out
