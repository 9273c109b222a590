"""The test helpers themselves: clean-up that really ends and reaps, deadlines that
really fire, and the pids-cgroup finder on v1, v2 and hybrid hosts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from proctools import (
    PYTHON_EXE,
    StatesParent,
    ZombieParent,
    in_top,
    pids_hierarchy,
    proc_state,
    read_line,
    read_until,
    start_parent,
    terminate,
)

from zombiectl.proc.table import child_pids, descendants_of

SLEEPER = [PYTHON_EXE, "-c", "import time; time.sleep(3600)"]


def _gone(pid: int) -> bool:
    return proc_state(pid) is None


@pytest.mark.parametrize("kind", ["popen", "int", "psutil"])
def test_terminate_takes_a_popen_a_pid_or_a_psutil_process(kind: str) -> None:
    proc = subprocess.Popen(SLEEPER)
    target = {"popen": proc, "int": proc.pid, "psutil": psutil.Process(proc.pid)}[kind]
    status = terminate(target)
    assert status == -signal.SIGTERM
    assert _gone(proc.pid)  # ended and reaped: no zombie left behind
    proc.poll()  # the Popen learns its child is gone either way


def test_terminate_ends_children_first_and_kills_what_ignores_term() -> None:
    parent = start_parent("noterm", 2)
    zombies = parent.zombie_pids
    assert terminate(parent.proc) == -signal.SIGKILL  # SIGTERM was ignored
    assert parent.pid not in child_pids(os.getpid())
    assert all(_gone(z) for z in zombies)  # orphaned to this session, then reaped
    parent.close()


def test_terminate_ends_live_descendants_and_a_stopped_one() -> None:
    parent = ZombieParent(2, alive=2)
    stopped = StatesParent("stopped", "sleeping")
    try:
        family = [parent.pid, *parent.zombie_pids, *parent.alive_pids]
        terminate(parent.proc)
        assert all(_gone(p) for p in family)
        kid = stopped.kids["stopped"]
        terminate(kid)  # SIGCONT first, so the SIGTERM is acted on
        assert proc_state(kid) in ("Z", None)  # dead: left for its own parent to reap
    finally:
        parent.close()
        stopped.close()
    assert descendants_of(os.getpid()) == []


def test_terminate_of_something_gone_signals_nobody() -> None:
    proc = subprocess.Popen([PYTHON_EXE, "-c", "pass"])
    proc.wait()
    assert terminate(proc) == 0  # its status, already collected; its pid is not reused


def test_read_line_fails_instead_of_hanging() -> None:
    proc = subprocess.Popen(
        [PYTHON_EXE, "-c", "import sys; print('one', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert read_line(proc.stdout) == "one\n"
        with pytest.raises(TimeoutError, match="no line within"):
            read_line(proc.stdout, timeout=0.2)
        with pytest.raises(TimeoutError):
            read_until(proc.stdout, lambda line: False, timeout=0.2)
    finally:
        terminate(proc)


def test_read_until_stops_at_end_of_stream() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "print('a'); print('b')"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        with pytest.raises(EOFError, match="'a\\\\n', 'b\\\\n'"):
            read_until(proc.stdout, lambda line: line == "c\n")
    finally:
        terminate(proc)


def test_in_top_is_right_only_when_listed_or_outranked() -> None:
    assert in_top({7: 2, 8: 9}, 7, 2, top=20)
    assert not in_top({7: 3}, 7, 2, top=20)  # listed with the wrong count
    assert not in_top({8: 9}, 7, 2, top=20)  # left out of a list with room
    assert in_top({8: 9, 9: 2}, 7, 2, top=2)  # a full list of parents with as many
    assert not in_top({8: 9, 9: 1}, 7, 2, top=2)  # a smaller one was kept instead


V1 = "39 31 0:36 / {v1} rw,relatime - cgroup cgroup rw,pids\n"
V2 = "41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw\n"


@pytest.mark.parametrize(
    ("lines", "v2_has_pids", "want"),
    [
        ([V2], True, "v2"),  # unified only
        ([V1, V2], False, "v1"),  # hybrid: pids bound to v1, so v2 does not list it
        ([V1], False, "v1"),  # v1 only
        ([V2], False, None),  # v2 without the pids controller
    ],
)
def test_pids_hierarchy_on_v1_v2_and_hybrid_hosts(tmp_path: Path, lines, v2_has_pids, want) -> None:
    v1, v2 = tmp_path / "pids", tmp_path / "unified"
    v1.mkdir()
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n" if v2_has_pids else "cpu memory\n")
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:20 / /proc rw - proc proc rw\n"
        + "".join(line.format(v1=v1, v2=v2) for line in lines)
    )
    found = pids_hierarchy(str(info))
    expected = {"v1": ("v1", str(v1)), "v2": ("v2", str(v2)), None: None}[want]
    assert found == expected
