"""Only state Z is a zombie: every state letter of /proc/PID/stat, through every reader.

The letters are the kernel's (fs/proc/array.c, task_state_array, and the older ones a
kernel may still print): R S D T t X x I P W K Z. X is a task being freed (after its
parent reaped it), never one waiting to be; it must not count. Each reader is fed the
letter as the kernel would give it: a stat line for the /proc readers, psutil's own
status string (psutil's table, not zombiectl's) for the psutil path, and the pytest
plugin's and check's own types. States other than R S T t Z cannot be caused on demand
by a test, so these are stat lines, not processes (tests/test_proctable.py has the real
R, S, T, t and Z).
"""

from __future__ import annotations

import psutil
import pytest

from zombiectl.proc import identity
from zombiectl.proc import table as proctable
from zombiectl.proc.records import ProcIdentity, ProcInfo
from zombiectl.proc.table import Snapshot, Stat, is_zombie_state
from zombiectl.testing.tree import Proc

LETTERS = ["R", "S", "D", "T", "t", "X", "x", "I", "P", "W", "K", "Z"]
# psutil's map from the letter to its status string, read from psutil itself.
PSUTIL_STATUS = psutil._pslinux.PROC_STATUSES  # type: ignore[attr-defined]


def stat_line(pid: int, ppid: int, letter: str, name: bytes = b"p") -> bytes:
    # pid (comm) state ppid pgrp session tty tpgid flags ... starttime (field 22)
    return b"%d (%s) %s %d %d 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987 0 0" % (
        pid,
        name,
        letter.encode(),
        ppid,
        ppid,
    )


@pytest.mark.parametrize("letter", LETTERS)
def test_only_z_is_a_zombie_through_stat(letter: str) -> None:
    zombie = letter == "Z"
    raw = stat_line(100, 10, letter, b") Z (")  # a name that forges a Z: never read as one
    stat = Stat(raw)
    assert stat.state == letter
    assert is_zombie_state(stat.state) is zombie
    assert Stat.info(100, raw).is_zombie is zombie
    assert list(Stat.zombies([(100, raw)])) == ([(100, 10)] if zombie else [])
    ident = ProcIdentity(100, 10, stat.state, stat.name, stat.flags, stat.starttime)
    assert ident.is_zombie is zombie


@pytest.mark.parametrize("letter", LETTERS)
def test_only_z_is_a_zombie_in_a_snapshot(letter: str) -> None:
    parent = stat_line(10, 1, "S", b"parent")
    raw = {10: parent, 100: stat_line(100, 10, letter), 101: stat_line(101, 10, "Z")}
    want = [100, 101] if letter == "Z" else [101]
    from_raw = Snapshot(None, 0.0, 0.0, raw=raw).zombies_by_parent()
    parsed = Snapshot({p: Stat.info(p, r) for p, r in raw.items()}, 0.0, 0.0)
    for snap in (from_raw, parsed.zombies_by_parent()):
        assert [(g.pid, g.zombie_pids) for g in snap] == [(10, want)]


class _FakeProcess:
    """What psutil.process_iter yields: `info` filled in for the attributes asked for."""

    def __init__(self, status: str) -> None:
        self.info = {"pid": 100, "ppid": 10, "status": status, "name": "p"}


@pytest.mark.parametrize("letter", LETTERS)
def test_only_z_is_a_zombie_through_psutil(letter: str, monkeypatch) -> None:
    status = PSUTIL_STATUS[letter]
    info = proctable._psutil_info(_FakeProcess(status))
    assert info is not None and info.is_zombie is (letter == "Z")
    # The one-process readers on a machine without /proc: psutil's status of this process.
    monkeypatch.setattr(proctable, "have_proc", lambda: False)
    monkeypatch.setattr(identity, "have_proc", lambda: False)
    monkeypatch.setattr(psutil.Process, "status", lambda self: status)
    me = proctable.read_proc(psutil.Process().pid)
    ident = identity.read_identity(psutil.Process().pid)
    assert me is not None and ident is not None
    assert me.is_zombie is (letter == "Z") and ident.is_zombie is (letter == "Z")


@pytest.mark.parametrize("letter", LETTERS)
def test_only_z_is_a_zombie_for_the_pytest_plugin(letter: str) -> None:
    proc = Proc(100, 10, letter, "p", 987)
    assert proc.is_zombie is (letter == "Z")
    assert ProcInfo(100, 10, letter, "p").is_zombie is (letter == "Z")


def test_the_table_is_the_kernels_whole_alphabet() -> None:
    """Every letter psutil knows for Linux is in the table: none is left untested."""
    assert set(PSUTIL_STATUS) <= set(LETTERS)
