"""`zombiectl watch`: the tracker and the schedule on fakes, the command on real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from proctools import GLOBAL_TIMEOUT, in_top, read_line, read_until, wait_until, zombie_children

from zombiectl.cli import cli
from zombiectl.proc.table import ProcInfo
from zombiectl.watching.lines import plain_line
from zombiectl.watching.render import live_view, sparkline
from zombiectl.watching.tracker import Gone, Tracker, run_watch

NO_PID = str(2**22 + 9)


def procs(*spec: tuple[int, str]) -> list[ProcInfo]:
    return [ProcInfo(pid, 1, state, f"p{pid}") for pid, state in spec]


def test_tracker_new_reaped_and_age() -> None:
    tr = Tracker(pid=1, started=100.0)
    s1 = tr.update(procs((10, "Z"), (11, "S")), now=100.0)
    assert (s1.zombies, s1.new_zombies, s1.reaped) == (1, [], [])  # first sample: nothing is "new"
    s2 = tr.update(procs((10, "Z"), (11, "Z"), (12, "R")), now=101.5)
    assert s2.new_zombies == [11] and s2.reaped == []
    assert s2.zombie_age == {10: 1.5, 11: 0.0}
    assert s2.states == {"R": 1, "Z": 2}
    s3 = tr.update(procs((11, "Z")), now=103.0)
    assert s3.reaped == [10] and s3.new_zombies == []
    assert s3.zombie_age == {11: 1.5}
    assert s3.history == (1, 2, 1)
    assert s3.t == 3.0 and s3.children == 1


def test_tracker_history_is_bounded() -> None:
    tr = Tracker(pid=None, started=0.0, history=3)
    for i in range(10):
        s = tr.update(procs(*[(100 + k, "Z") for k in range(i)]), now=float(i))
    assert s.history == (7, 8, 9)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_run_watch_keeps_a_fixed_schedule_and_skips_missed_ticks() -> None:
    clock = FakeClock()
    seen: list[float] = []
    costs = iter([0.1, 0.1, 2.5, 0.1, 0.1])

    def take(now: float) -> float:
        seen.append(now)
        clock.now += next(costs)  # the sample itself takes time
        return now

    n = run_watch(take, lambda s: None, interval=1.0, count=5, clock=clock, sleep=clock.sleep)
    assert n == 5
    # A slow tick (2.5 s) skips the ticks it overran instead of bunching them up.
    assert seen == [0.0, 1.0, 2.0, 5.0, 6.0]


def test_run_watch_stops_on_gone() -> None:
    clock = FakeClock()
    calls = {"n": 0}

    def take(now: float) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Gone(1)
        return calls["n"]

    with pytest.raises(Gone):
        run_watch(take, lambda s: None, interval=0.5, count=None, clock=clock, sleep=clock.sleep)
    assert calls["n"] == 3


def test_sparkline() -> None:
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 4, 8]) == "▁▄█"
    assert sparkline([]) == ""


def test_renderers_show_counts() -> None:
    tr = Tracker(pid=7, started=0.0)
    tr.update(procs((10, "Z")), now=0.0)
    s = tr.update(procs((10, "Z"), (11, "Z"), (12, "S")), now=1.0)
    line = plain_line(s)
    assert "children 3, zombies 2 (+1 new, -0 reaped)" in line and "S:1 Z:2" in line
    from rich.console import Console

    console = Console(width=100, record=True, color_system=None)
    console.print(live_view(s, 1.0))
    text = console.export_text()
    assert "zombies 2" in text and "new +1" in text and "1.0s" in text


def test_json_samples_of_a_real_parent(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(3, alive=2)
    res = zombiectl(
        "watch", "--pid", str(parent.pid), "--json", "--interval", "0.05", "--count", "3"
    )
    assert res.returncode == 0, res.stderr
    samples = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(samples) == 3
    for s in samples:
        assert set(s) >= {
            "t",
            "pid",
            "children",
            "zombies",
            "states",
            "zombie_pids",
            "new_zombies",
            "reaped",
        }
        assert s["pid"] == parent.pid and s["children"] == 5 and s["zombies"] == 3
        assert s["zombie_pids"] == parent.zombie_pids
        assert s["states"]["Z"] == 3
    assert samples[0]["t"] < samples[1]["t"] < samples[2]["t"]


def test_once_is_count_one_and_system_view(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(2)
    res = zombiectl("watch", "--once", "--json")
    [sample] = [json.loads(line) for line in res.stdout.splitlines()]
    assert sample["pid"] is None
    assert set(parent.zombie_pids) <= set(sample["zombie_pids"])
    listed = {p["pid"]: p["zombies"] for p in sample["parents"]}
    assert in_top(listed, parent.pid, 2, top=20)  # the system view lists the 20 biggest


def test_tree_sees_grandchildren(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(2)
    me = os.getpid()
    res = zombiectl("watch", "--pid", str(me), "--tree", "--once", "--json")
    sample = json.loads(res.stdout)
    assert set(parent.zombie_pids) <= set(sample["zombie_pids"])
    flat = json.loads(zombiectl("watch", "--pid", str(me), "--once", "--json").stdout)
    assert not set(parent.zombie_pids) & set(flat["zombie_pids"])


# A parent driven over stdin: "f" forks a child that exits at once, "r" reaps one.
CONTROLLED = r"""
import os, sys
kids = []
for line in sys.stdin:
    if line.startswith("f"):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        kids.append(pid)
    elif line.startswith("r") and kids:
        os.waitpid(kids.pop(0), 0)
    print(" ".join(map(str, kids)), flush=True)
for pid in kids:
    os.waitpid(pid, 0)
"""


def test_new_and_reaped_are_seen_live() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CONTROLLED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    watcher = None
    try:
        assert parent.stdin and parent.stdout

        def cmd(c: str) -> list[int]:
            parent.stdin.write(c + "\n")
            parent.stdin.flush()
            return [int(x) for x in read_line(parent.stdout).split()]

        first = cmd("f")
        assert wait_until(lambda: zombie_children(parent.pid) == first)
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zombiectl",
                "watch",
                "--pid",
                str(parent.pid),
                "--json",
                "--interval",
                "0.05",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout
        assert json.loads(read_line(watcher.stdout))["zombie_pids"] == first
        kids = cmd("f")
        second = kids[1]
        assert wait_until(lambda: len(zombie_children(parent.pid)) == 2)
        # The sample that first shows the second zombie calls it new.
        lines = read_until(watcher.stdout, lambda line: bool(json.loads(line)["new_zombies"]))
        s = json.loads(lines[-1])
        assert s["new_zombies"] == [second] and s["zombies"] == 2
        cmd("r")
        lines = read_until(watcher.stdout, lambda line: bool(json.loads(line)["reaped"]))
        s = json.loads(lines[-1])
        assert s["reaped"] == first and s["zombie_pids"] == [second]
        # The parent exits: watch says so and ends with 0.
        parent.stdin.close()
        parent.wait(GLOBAL_TIMEOUT)
        rest = watcher.communicate(timeout=GLOBAL_TIMEOUT)[0]
        assert watcher.returncode == 0
        for line in rest.splitlines():
            json.loads(line)  # stdout stays pure JSON lines
    finally:
        for p in (watcher, parent):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        for p in (watcher, parent):
            if p is not None:
                for f in (p.stdin, p.stdout):
                    if f:
                        f.close()


@contextmanager
def watching(pid: int) -> Iterator[subprocess.Popen[str]]:
    """`zombiectl watch --pid PID` in plain mode, killed and reaped whatever happens."""
    cmd = [sys.executable, "-m", "zombiectl", "watch", "--pid", str(pid), "--interval", "0.05"]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield watcher
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.communicate()


def test_watch_ends_when_pid_exits_and_says_so(zombie_parent) -> None:
    parent = zombie_parent(1)
    with watching(parent.pid) as watcher:
        assert watcher.stdout
        assert "zombies 1" in read_line(watcher.stdout)
        parent.close()
        _, err = watcher.communicate(timeout=GLOBAL_TIMEOUT)
        assert watcher.returncode == 0
        assert f"pid {parent.pid} exited" in err


def test_ctrl_c_ends_watch_with_0(zombie_parent) -> None:
    parent = zombie_parent(1)
    with watching(parent.pid) as watcher:
        assert watcher.stdout
        read_line(watcher.stdout)
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=GLOBAL_TIMEOUT)
        assert watcher.returncode == 0, err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["watch", "--pid", NO_PID, "--once"], 3, "no such process"),
        (["watch", "--pid", "x"], 2, "not a process id"),
        (["watch", "--pid", "-1"], 2, "not a process id"),
        (["watch", "--interval", "0.01", "--once"], 2, "--interval"),
        (["watch", "--interval", "abc"], 2, "--interval"),
        (["watch", "--count", "0"], 2, "--count"),
        (["watch", "--tree", "--once"], 2, "--tree needs --pid"),
    ],
)
def test_watch_errors(zombiectl, args, code, needle) -> None:
    res = zombiectl(*args)
    assert res.returncode == code
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr
    assert res.stdout == ""


def test_help_has_examples() -> None:
    res = CliRunner().invoke(cli, ["watch", "--help"])
    assert res.exit_code == 0 and "zombiectl watch --pid 4242" in res.output


def test_watch_counts_each_state_of_a_real_parent(states_parent, zombiectl) -> None:
    kids = states_parent.kids
    res = zombiectl("watch", "--pid", str(states_parent.pid), "--json", "--count", "1")
    assert res.returncode == 0, res.stderr
    (sample,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert sample["zombies"] == 1 and sample["zombie_pids"] == [kids["zombie"]]
    assert sample["children"] == 4
    assert sample["states"] == {"Z": 1, "T": 1, "t": 1, "S": 1}
