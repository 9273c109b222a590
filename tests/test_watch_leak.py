"""`watch` on a parent that leaks: rate, limits, zombie age bounds, the final frame.

Real processes where it is cheap: a parent that forks a short-lived child at a steady
pace and never waits, then exits; fakes only for the limit files of cgroup v2.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest
from proctools import (
    CLK_TCK,
    GLOBAL_TIMEOUT,
    pids_cgroup,
    read_line,
    reap_adopted,
    start_ticks,
    terminate,
    uptime,
    wait_until,
    zombie_children,
)
from rich.console import Console

from zombiectl.proc import age, limits
from zombiectl.proc.table import ProcInfo, children_of
from zombiectl.watching.lines import exit_line, plain_line
from zombiectl.watching.render import history_text, live_view, zombie_age
from zombiectl.watching.tracker import Adopter, Exited, Tracker, after_exit

# Forks one child every PACE seconds (each exits at once; none is ever reaped) until its
# stdin says "stop", then reports "stopped" and exits on "exit" without reaping.
LEAKER = r"""
import os, select, sys, time
pace = float(sys.argv[1])
print(os.getpid(), flush=True)
while True:
    if os.fork() == 0:
        os._exit(0)
    r, _, _ = select.select([sys.stdin], [], [], pace)
    if r:
        break
line = sys.stdin.readline()
print("stopped", flush=True)
sys.stdin.readline()
os._exit(0)
"""


@contextmanager
def leaker(pace: float) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LEAKER, str(pace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        read_line(proc.stdout)
        yield proc
    finally:
        terminate(proc, signal.SIGKILL)
        reap_adopted(exclude=())


def say(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def watch(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100")
    return subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# --------------------------------------------------------------------------- real leaks


def test_rate_per_min_follows_a_steady_leak() -> None:
    with leaker(0.05) as parent:
        assert wait_until(lambda: len(zombie_children(parent.pid)) >= 3)
        w = watch("--pid", str(parent.pid), "--json", "--interval", "0.2", "--count", "6")
        out, err = w.communicate(timeout=GLOBAL_TIMEOUT)
        assert w.returncode == 0, err
        say(parent, "stop")
        samples = [json.loads(line) for line in out.splitlines()]
        assert len(samples) == 6 and samples[0]["rate_per_min"] == 0.0
        # The rate is the new zombies seen since the first sample, per minute of samples.
        t0 = samples[0]["t"]
        new = 0
        for s in samples[1:]:
            new += len(s["new_zombies"])
            assert s["rate_per_min"] == pytest.approx(new / (s["t"] - t0) * 60, rel=0.01)
        # ...and agrees, loosely, with the pace at which the kernel saw the children start.
        zpids = samples[-1]["zombie_pids"]
        times = sorted(start_ticks(p) / CLK_TCK for p in zpids)
        pace = (len(times) - 1) / (times[-1] - times[0]) * 60
        assert pace / 4 < samples[-1]["rate_per_min"] < pace * 4
        assert samples[-1]["seconds_left"] > 0 and samples[-1]["limit"]["max"] > 0


def test_final_frame_names_the_adopter() -> None:
    with leaker(0.02) as parent:
        assert wait_until(lambda: len(zombie_children(parent.pid)) >= 5)
        w = watch("--pid", str(parent.pid), "--interval", "0.05")
        assert w.stdout is not None
        first = read_line(w.stdout)
        assert "zombies" in first and "leak" in first
        say(parent, "stop")
        assert parent.stdout is not None and read_line(parent.stdout) == "stopped\n"
        say(parent, "exit")
        parent.wait(GLOBAL_TIMEOUT)
        out, err = w.communicate(timeout=GLOBAL_TIMEOUT)
        assert w.returncode == 0
        last = out.splitlines()[-1]
        # This session is a child subreaper: it adopts the zombies (and reaps them later).
        assert last.startswith(f"pid {parent.pid} exited")
        assert f"adopted by pid {os.getpid()}" in last, last
        assert f"adopted by pid {os.getpid()}" in err


def test_after_exit_counts_adopted_and_reaped(zombie_parent) -> None:
    parent = zombie_parent(3)
    zombies = {p.pid: p for p in children_of(parent.pid) if p.is_zombie}
    parent.proc.kill()  # it has no live child: its zombies are orphaned, not killed
    parent.proc.wait()
    assert wait_until(lambda: all(psutil.Process(z).ppid() == os.getpid() for z in zombies))
    reaped = zombies and next(iter(zombies))
    os.waitpid(reaped, 0)
    e = after_exit(parent.pid, "leaky", zombies)
    assert e.zombies == 3 and e.gone == 1
    assert e.adopters == [Adopter(os.getpid(), psutil.Process().name(), 2)]
    assert exit_line(e).endswith(
        f"2 adopted by pid {os.getpid()} ({e.adopters[0].name}), 1 already reaped"
    )


def test_zombie_age_bounds_against_the_real_start_time(zombie_parent) -> None:
    born_after = uptime()
    parent = zombie_parent(2)
    born_before = uptime()
    zpid = parent.zombie_pids[0]
    started = start_ticks(zpid) / CLK_TCK  # field 22, parsed here, in seconds after boot
    tr = Tracker(parent.pid, started=0.0)
    kids = children_of(parent.pid)
    up_before = uptime()
    s = tr.update(kids, now=10.0, ages=age.since_start(tr.unknown_ages(kids)))
    up_after = uptime()
    s = tr.update(kids, now=12.5, ages=age.since_start(tr.unknown_ages(kids)))
    assert s.zombie_age[zpid] == 2.5  # seen for 2.5 s of the fake clock
    # The upper bound is the process's age when first seen, plus the 2.5 s since. Its
    # oracle is /proc/uptime read around that sample, minus the start ticks: exact to a
    # tick and a centisecond (both files truncate), whatever fraction of a second the
    # machine booted at.
    first_age = s.zombie_max_age[zpid] - 2.5
    slack = 2 / CLK_TCK + 0.01
    assert up_before - started - slack <= first_age <= up_after - started + slack
    # And without field 22: the zombie was born between two readings of the uptime.
    assert up_before - born_before - slack <= first_age <= up_after - born_after + slack
    assert zpid in s.preexisting
    assert zombie_age(s, zpid).startswith("≥2.5s (≤")


def test_tree_says_descendants(zombie_parent) -> None:
    parent = zombie_parent(1)
    w = watch("--pid", str(parent.pid), "--tree", "--once")
    out, err = w.communicate(timeout=GLOBAL_TIMEOUT)
    assert w.returncode == 0, err
    assert "descendants 1" in out and "children" not in out


# --------------------------------------------------------------------------- the tracker, fakes


def procs(*spec: tuple[int, str]) -> list[ProcInfo]:
    return [ProcInfo(pid, 1, state, f"p{pid}") for pid, state in spec]


def test_rate_counts_new_zombies_over_the_last_minute() -> None:
    tr = Tracker(pid=1, started=0.0)
    zs: list[tuple[int, str]] = [(1000, "Z")]
    s = tr.update(procs(*zs), now=0.0)
    assert s.rate_per_min == 0.0  # the first sample's zombies are not new
    for t in range(1, 121):
        zs.append((1000 + t, "Z"))  # one new zombie per second
        s = tr.update(procs(*zs), now=float(t))
        if t == 30:
            assert s.rate_per_min == pytest.approx(60.0)
    assert s.rate_per_min == pytest.approx(60.0)  # over the last minute only
    s = tr.update(procs(*zs), now=150.0)  # nothing new for 30 s: half the rate
    assert s.rate_per_min == pytest.approx(30.0)


def test_newest_first_and_seconds_left() -> None:
    tr = Tracker(pid=1, started=0.0)
    tr.update(procs((10, "Z"), (11, "Z")), now=0.0)
    s = tr.update(
        procs((10, "Z"), (11, "Z"), (12, "Z"), (13, "Z")),
        now=30.0,
        headroom=limits.Limit("pids.max of cgroup /x", 100, 40),
    )
    assert s.newest_first() == [13, 12, 11, 10]
    assert s.rate_per_min == pytest.approx(4.0)
    assert s.seconds_left == pytest.approx(60 / 4 * 60)
    assert "pids.max of cgroup /x (100) reached in ~15m" in plain_line(s)
    assert plain_line(s).endswith("zombie pids 13 12 11 10")


def test_preexisting_zombie_without_start_time_shows_lower_bound_only() -> None:
    tr = Tracker(pid=1, started=0.0)
    tr.update(procs((10, "Z")), now=0.0)
    s = tr.update(procs((10, "Z"), (11, "Z")), now=1.5, ages={11: 0.5})
    assert zombie_age(s, 10) == "≥1.5s"
    assert zombie_age(s, 11) == "0.0s"  # appeared while watched: no bound needed


def _render(s, width: int = 100) -> list[str]:
    console = Console(file=io.StringIO(), width=width, no_color=True)
    console.print(live_view(s, 1.0))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_columns_keep_their_width_between_frames() -> None:
    tr = Tracker(pid=1, started=0.0)
    a = tr.update([ProcInfo(7, 1, "Z", "a")], now=0.0)
    b = tr.update(
        [ProcInfo(7, 1, "Z", "a"), ProcInfo(1234567, 1, "Z", "a-much-longer-name")], now=100.0
    )
    head_a = next(line for line in _render(a) if "ZOMBIE FOR" in line)
    head_b = next(line for line in _render(b) if "ZOMBIE FOR" in line)
    assert head_a == head_b


def test_sparkline_shows_its_scale() -> None:
    tr = Tracker(pid=1, started=0.0)
    for i, n in enumerate([0, 2, 4, 8]):
        s = tr.update(procs(*[(100 + k, "Z") for k in range(n)]), now=float(i))
    text = history_text(s).plain
    assert text.startswith("zombies, last 4 samples 0 ") and text.endswith(" 8")


def test_exit_line_without_zombies() -> None:
    assert exit_line(Exited(5, "x", 0, [], 0)) == "pid 5 exited (it was x)"


# --------------------------------------------------------------------------- limits


def test_cgroup_files_are_parsed_v1_and_v2() -> None:
    mountinfo = (
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert limits.pids_mounts(mountinfo) == (
        ("/", "/sys/fs/cgroup/unified"),
        ("/", "/sys/fs/cgroup/pids"),
    )
    assert limits.cgroup_paths("8:pids:/a/b\n0::/c\n") == ("/c", "/a/b")


def test_v2_limit_is_the_tightest_up_the_tree(tmp_path) -> None:
    for rel, mx, cur in (("", None, None), ("a", "50", "45"), ("a/b", "max", "3")):
        d = tmp_path / rel
        d.mkdir(exist_ok=True)
        if mx is not None:
            (d / "pids.max").write_text(mx + "\n")
            (d / "pids.current").write_text(f"{cur}\n")
    found = limits._pids_limits(("/", str(tmp_path)), "/a/b", "pids.current")
    assert [(lim.name, lim.left) for lim in found] == [("pids.max of cgroup /a", 5)]


def test_v1_pids_max_of_a_real_process() -> None:
    group = pids_cgroup(77)
    if group is None:
        pytest.skip("cannot create a pids cgroup here")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(proc.pid))
        tight = limits.headroom(proc.pid)
        assert tight is not None and tight.limit == 77 and tight.used == 1
        assert tight.name == f"pids.max of cgroup /{os.path.basename(group)}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
        os.rmdir(group)


def test_whole_system_oldest_has_the_same_bounds() -> None:
    from zombiectl.watching.render import oldest_age

    tr = Tracker(pid=None, started=0.0)
    tr.update(procs((10, "Z")), now=0.0, ages={10: 1800.0})
    s = tr.update(procs((10, "Z"), (11, "Z")), now=1.5, ages={11: 0.2})
    assert oldest_age(s, [10, 11]) == "≥1.5s (≤30m)"
    assert oldest_age(s, [11]) == "0.0s"


def test_live_view_on_a_terminal_ends_with_the_final_frame() -> None:
    import pty
    import select
    import time

    with leaker(0.02) as parent:
        assert wait_until(lambda: len(zombie_children(parent.pid)) >= 3)
        args = ["-m", "zombiectl", "watch", "--pid", str(parent.pid), "--interval", "0.05"]
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child becomes zombiectl on the terminal
            try:
                os.execve(sys.executable, [sys.executable, *args], dict(os.environ, NO_COLOR="1"))
            finally:
                os._exit(127)
        out = b""
        try:
            deadline = time.monotonic() + 30
            while b"ZOMBIE FOR" not in out and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    out += os.read(fd, 65536)
            say(parent, "stop")
            assert parent.stdout is not None and read_line(parent.stdout) == "stopped\n"
            say(parent, "exit")
            parent.wait(GLOBAL_TIMEOUT)
            while time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:  # EIO: zombiectl has exited and closed the terminal
                        break
                    if not data:
                        break
                    out += data
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
    text = out.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0
    assert "leak " in text and "ZOMBIE FOR" in text
    assert f"pid {parent.pid} exited" in text and f"adopted by pid {os.getpid()}" in text
