"""The process table reader against real processes, and against psutil and ps."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest
from proctools import STATE_OF_KIND, ZombieParent, start_ticks, uptime, wait_until

from zombiectl.errors import NoSuchProcess
from zombiectl.proc import table as proctable
from zombiectl.proc.identity import read_identity
from zombiectl.proc.table import ProcInfo, Stat, scan

CLK_TCK = os.sysconf("SC_CLK_TCK")


def test_parse_stat_with_spaces_and_parens_in_name() -> None:
    raw = b"123 (a) (b) c) Z 45 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0"
    info = Stat.info(123, raw)
    assert info == ProcInfo(123, 45, "Z", "a) (b) c")
    assert info.is_zombie and info.ppid == 45


def test_scan_sees_real_zombies_grouped_under_their_parent(zombie_parent) -> None:
    parent = zombie_parent(7, alive=2)
    snap = scan()
    groups = {g.pid: g for g in snap.zombies_by_parent()}
    assert groups[parent.pid].zombie_pids == parent.zombie_pids
    assert groups[parent.pid].user  # a name or a uid, never empty
    states = {p.pid: p.state for p in snap.procs.values() if p.ppid == parent.pid}
    assert sorted(pid for pid, s in states.items() if s == "Z") == parent.zombie_pids
    assert sorted(pid for pid, s in states.items() if s != "Z") == parent.alive_pids


def test_stat_fields_by_name_with_a_hostile_name() -> None:
    raw = b"123 (a) (b) c) Z 45 67 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987 0 0"
    stat = Stat(raw)
    assert (stat.name, stat.state, stat.ppid, stat.pgrp) == ("a) (b) c", "Z", 45, 67)
    assert (stat.flags, stat.starttime) == (4194560, 987)
    assert list(Stat.zombies([(123, raw), (124, raw.replace(b") Z ", b") T "))])) == [(123, 45)]
    with pytest.raises(ValueError):
        Stat(b"")


def test_stat_fields_agree_with_the_kernel_and_psutil() -> None:
    with open(f"/proc/{os.getpid()}/stat", "rb") as f:
        stat = Stat(f.read())
    assert (stat.ppid, stat.pgrp, stat.state) == (os.getppid(), os.getpgrp(), "R")
    assert stat.starttime == start_ticks(os.getpid())  # field 22, parsed here
    # psutil as a loose second oracle: it adds the ticks to the whole-second btime of
    # /proc/stat, so it may be off by up to a second (plus a tick) from the real start.
    started = time.time() - (uptime() - stat.starttime / CLK_TCK)
    assert abs(started - psutil.Process().create_time()) <= 1.0 + 2 / CLK_TCK


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_parallel_scan_matches_single_reader(zombie_parent, workers, monkeypatch) -> None:
    parent = zombie_parent(40)
    monkeypatch.setattr(proctable, "_PARALLEL_THRESHOLD", 1)
    snap = scan(workers=workers)
    assert [g.zombie_pids for g in snap.zombies_by_parent(parent.pid)] == [parent.zombie_pids]
    assert os.getpid() in snap.procs


def test_biggest_leaker_first(zombie_parent) -> None:
    small = zombie_parent(2)
    big = zombie_parent(5)
    order = [g.pid for g in scan().zombies_by_parent() if g.pid in (small.pid, big.pid)]
    assert order == [big.pid, small.pid]


def test_psutil_path_agrees_with_proc_path(zombie_parent) -> None:
    parent = zombie_parent(5, alive=1)
    fast = scan(use_proc=True).zombies_by_parent(parent.pid)
    slow = scan(use_proc=False).zombies_by_parent(parent.pid)
    assert fast == slow
    assert fast[0].zombie_pids == parent.zombie_pids


def test_zombie_count_agrees_with_ps_and_psutil(zombie_parent) -> None:
    parent = zombie_parent(25)
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True).stdout
    ps_zombies = sorted(
        int(f[0])
        for f in (line.split() for line in out.splitlines())
        if f[1] == str(parent.pid) and f[2].startswith("Z")
    )
    psutil_zombies = sorted(
        c.pid for c in psutil.Process(parent.pid).children() if c.status() == psutil.STATUS_ZOMBIE
    )
    ours = scan().zombies_by_parent(parent.pid)[0].zombie_pids
    assert ours == ps_zombies == psutil_zombies == parent.zombie_pids


def test_children_of_reads_children_files(zombie_parent) -> None:
    parent = zombie_parent(3, alive=2)
    kids = proctable.children_of(parent.pid)
    assert [k.pid for k in kids] == sorted(parent.zombie_pids + parent.alive_pids)
    assert all(k.ppid == parent.pid for k in kids)


def test_children_of_falls_back_to_a_scan_without_children_files(
    zombie_parent, monkeypatch
) -> None:
    parent = zombie_parent(3)
    monkeypatch.setattr(proctable, "_children_files", lambda pid: None)
    assert [k.pid for k in proctable.children_of(parent.pid)] == parent.zombie_pids


def test_descendants_of_includes_grandchildren(zombie_parent) -> None:
    parent = zombie_parent(2, alive=1)
    me = os.getpid()
    desc = {p.pid for p in proctable.descendants_of(me)}
    assert {parent.pid, *parent.zombie_pids, *parent.alive_pids} <= desc


def test_children_of_missing_pid_raises() -> None:
    with pytest.raises(NoSuchProcess):
        proctable.children_of(2**22 + 1)


def test_vanishing_processes_are_skipped(monkeypatch) -> None:
    real_listdir = os.listdir

    def listdir_with_ghosts(path):
        names = real_listdir(path)
        return [*names, "4194999", "4194998"] if path == "/proc" else names

    monkeypatch.setattr(os, "listdir", listdir_with_ghosts)
    snap = scan(workers=1)
    assert 4194999 not in snap.procs and os.getpid() in snap.procs


def test_stat_read_failure_is_skipped(monkeypatch) -> None:
    real_read = os.read
    me = os.getpid()
    calls = {"n": 0}

    def flaky_read(fd, n):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ProcessLookupError(3, "No such process")
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", flaky_read)
    snap = scan(workers=1)
    assert len(snap) > 1 and me in snap.procs


def test_zombie_parent_cleans_up() -> None:
    parent = ZombieParent(3, alive=1)
    pids = [parent.pid, *parent.zombie_pids, *parent.alive_pids]
    parent.close()
    assert all(
        proctable.read_proc(p) is None or p not in proctable.child_pids(os.getpid()) for p in pids
    )
    assert proctable.read_proc(parent.pid) is None


def test_known_zombies_are_not_read_again(zombie_parent, monkeypatch) -> None:
    parent = zombie_parent(6, alive=2)
    first = proctable.children_of(parent.pid)
    known = {p.pid: p for p in first if p.is_zombie}
    opened: list[str] = []
    real_open = os.open

    def counting_open(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", counting_open)
    again = proctable.children_of(parent.pid, known)
    # A live child's state may change between two reads (S, then R): compare pids, and
    # the zombies whole.
    assert [p.pid for p in again] == [p.pid for p in first]
    assert [p for p in again if p.is_zombie] == list(known.values())
    stat_reads = sorted(int(p.split("/")[2]) for p in opened if p.endswith("/stat"))
    assert stat_reads == parent.alive_pids


def test_parallel_scan_reads_every_pid_once(zombie_parent, monkeypatch) -> None:
    parent = zombie_parent(30, alive=3)
    monkeypatch.setattr(proctable, "_PARALLEL_THRESHOLD", 1)
    names = {int(n) for n in os.listdir("/proc") if n.isdigit()}
    snap = scan(workers=3)
    # Every process that existed before and after the scan is in it, under its own pid.
    still = {int(n) for n in os.listdir("/proc") if n.isdigit()}
    assert names & still <= set(snap.procs)
    assert all(p.pid == pid for pid, p in snap.procs.items())
    assert snap.zombies_by_parent(parent.pid)[0].zombie_pids == parent.zombie_pids


def test_parallel_scan_without_fork_reads_in_process(zombie_parent, monkeypatch) -> None:
    parent = zombie_parent(5)
    monkeypatch.setattr(proctable, "_PARALLEL_THRESHOLD", 1)

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    snap = scan(workers=2)
    assert snap.zombies_by_parent(parent.pid)[0].zombie_pids == parent.zombie_pids


def test_parallel_scan_does_not_fork_while_threads_run(zombie_parent, monkeypatch) -> None:
    import threading

    parent = zombie_parent(5)
    monkeypatch.setattr(proctable, "_PARALLEL_THRESHOLD", 1)
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        snap = scan(workers=2)
    finally:
        stop.set()
        t.join()
    assert forks == []
    assert snap.zombies_by_parent(parent.pid)[0].zombie_pids == parent.zombie_pids


# --------------------------------------------------------------------------- states


def test_only_the_dead_child_is_a_zombie(states_parent) -> None:
    """Stopped (T) and traced (t) children are alive: only Z counts, in every reader."""
    kids = states_parent.kids
    seen = {p.pid: p for p in proctable.children_of(states_parent.pid)}
    assert {pid: seen[pid].state for pid in kids.values()} == {
        pid: STATE_OF_KIND[kind] for kind, pid in kids.items()
    }
    assert [p.pid for p in seen.values() if p.is_zombie] == [kids["zombie"]]
    for kind, pid in kids.items():
        assert read_identity(pid).is_zombie == (kind == "zombie")  # type: ignore[union-attr]
    for snap in (scan(use_proc=True), scan(use_proc=False)):
        groups = snap.zombies_by_parent(states_parent.pid)
        assert [g.zombie_pids for g in groups] == [[kids["zombie"]]]


# --------------------------------------------------------------------------- start times


def test_start_times_agree_with_the_kernel(zombie_parent) -> None:
    """Field 22 of /proc/PID/stat: the same ticks as parsed here, and a time between two
    readings of /proc/uptime taken around the processes' births."""
    born_after = uptime()
    parent = zombie_parent(2, alive=1)
    born_before = uptime()
    slack = 2 / CLK_TCK + 0.01  # both files truncate: a tick and a centisecond
    for pid in (parent.pid, *parent.zombie_pids, *parent.alive_pids):
        ident = read_identity(pid)
        assert ident is not None
        assert ident.starttime == start_ticks(pid)
        assert born_after - slack <= ident.starttime / CLK_TCK <= born_before + slack
    ident = read_identity(os.getpid())
    assert ident is not None and ident.starttime == start_ticks(os.getpid())
    # psutil where it must be the oracle: within a second and a tick (its btime is whole).
    own = time.time() - (uptime() - ident.starttime / CLK_TCK)
    assert abs(own - psutil.Process().create_time()) <= 1.0 + 2 / CLK_TCK


def _ticks_since_boot() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * CLK_TCK


def test_a_later_process_has_a_later_start_time(zombie_parent) -> None:
    """Two parents started at least one clock tick apart: the second starts later."""
    first = zombie_parent(1)
    born = read_identity(first.pid).starttime  # type: ignore[union-attr]
    assert wait_until(lambda: _ticks_since_boot() > born + 2)
    second = zombie_parent(1)
    later = read_identity(second.pid).starttime  # type: ignore[union-attr]
    assert later > born
    # And children start no earlier than their parent.
    assert read_identity(second.zombie_pids[0]).starttime >= later  # type: ignore[union-attr]
