"""The supervisor against hostile programs: what it ends, what it never touches, how fast.

Each program here fights the check the way a student's code (or an attacker's) can: it
joins a process group that is not its own, ignores SIGTERM and SIGINT, turns its death
signal off, forks behind zombiectl's back with CLONE_PARENT. zombiectl runs as a real
subprocess in this session, a child subreaper, so whatever it leaves comes back here and
is found by `nothing_left`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proctools import (
    GLOBAL_TIMEOUT,
    build_c,
    describe,
    reap_adopted,
    run_zombiectl_in_pids_cgroup,
    wait_until,
)
from proctools import read_until as lines_until

from zombiectl.proc.pidfd import Pinned, starttime_of
from zombiectl.proc.table import descendants_of, read_proc

PROGRAMS = Path(__file__).parent / "programs"

# CMD turns its death signal off, ignores the signals that end a program politely, moves
# into process group TARGET ("own": zombiectl's own group, else a number), and forks a
# child that does the same. Both then sleep forever; "ready CMD CHILD" goes to stderr.
HOSTILE = r"""
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
libc.prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0
target = os.getpgid(os.getppid()) if sys.argv[1] == "own" else int(sys.argv[1])
os.setpgid(0, target)
kid = os.fork()
if kid == 0:
    libc.prctl(1, 0, 0, 0, 0)
    while True:
        time.sleep(60)
sys.stderr.write(f"ready {os.getpid()} {kid}\n")
sys.stderr.flush()
while True:
    time.sleep(60)
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", **extra)
    env.pop("ZOMBIECTL_CHECK_SAMPLED", None)
    return env


def check(*args: str, timeout: float = GLOBAL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zombiectl", "check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )


def start_check(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "check", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )


def ready_pids(proc: subprocess.Popen[str]) -> list[int]:
    assert proc.stderr is not None
    line = lines_until(proc.stderr, lambda text: text.startswith("ready "))[-1]
    return [int(x) for x in line.split()[1:]]


def gone(pid: int, start: int | None) -> bool:
    """pid no longer names the process that started at `start` (or is a zombie)."""
    info = read_proc(pid)
    return info is None or info.is_zombie or starttime_of(pid) != start


def nothing_under_us() -> bool:
    return reap_adopted(timeout=0.1) is not None and not descendants_of(os.getpid())


@pytest.fixture
def nothing_left() -> Iterator[None]:
    yield
    assert wait_until(nothing_under_us, 15), describe(descendants_of(os.getpid()))


# --------------------------------------------------------------------------- groups


def test_a_foreign_group_that_a_member_joins_is_never_signalled(nothing_left: None) -> None:
    # A process of this session, in a group of its own: CMD (same session) may join it.
    foreign = subprocess.Popen(["sleep", "60"], process_group=0)
    try:
        res = check(
            "--json", "--duration", "1", "--grace", "0.2",
            "--", sys.executable, "-c", HOSTILE, str(foreign.pid),
        )  # fmt: skip
        assert res.returncode in (0, 1), res.stderr
        report = json.loads(res.stdout)
        assert report["ended_by_check"] is True and report["processes_ended_by_check"] == 1
        assert foreign.poll() is None
        info = read_proc(foreign.pid)
        assert info is not None and not info.is_zombie
    finally:
        foreign.kill()
        foreign.wait()


def test_a_member_in_zombiectls_group_that_ignores_signals_is_ended_in_time(
    nothing_left: None,
) -> None:
    duration, grace = 1.0, 1.0
    res = check(
        "--json", "--duration", str(duration), "--grace", str(grace),
        "--", sys.executable, "-c", HOSTILE, "own",
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    report = json.loads(res.stdout)
    # The contract: the check ends by --duration + --grace + 2 s, whatever the tree does.
    assert report["seconds"] <= duration + grace + 2
    assert report["stuck"] == [] and report["processes_ended_by_check"] == 1


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_ends_a_hostile_tree_within_grace(
    sig: int, code: int, nothing_left: None
) -> None:
    grace = 1.0
    proc = start_check("--duration", "60", "--grace", str(grace), "--", sys.executable, "-c",
                       HOSTILE, "own")  # fmt: skip
    try:
        cmd, kid = ready_pids(proc)
        starts = {pid: starttime_of(pid) for pid in (cmd, kid)}
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert took <= grace + 2, took
    assert json.loads(out)["interrupted"] is True
    assert all(gone(pid, start) for pid, start in starts.items())


@pytest.mark.slow
def test_sigkill_of_zombiectl_at_random_moments_leaves_nothing(nothing_left: None) -> None:
    rng = random.Random(1812)
    for trial in range(50):
        proc = start_check("--duration", "60", "--", sys.executable, "-c", HOSTILE, "own")
        try:
            time.sleep(rng.uniform(0.0, 0.8))
        finally:
            proc.kill()
            proc.communicate()
        assert wait_until(nothing_under_us, 15), (trial, describe(descendants_of(os.getpid())))


# --------------------------------------------------------------------------- errors


# fork refused, as RLIMIT_NPROC refuses it (root ignores that limit, and the interpreter
# here is not one another user may run): the whole CLI runs with os.fork failing.
_NO_FORK = r"""
import errno, os, sys
def refuse():
    raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
os.fork = refuse
from zombiectl.main import main
sys.argv = ["zombiectl", "check", "--", "/bin/true"]
main()
"""


@pytest.mark.root
@pytest.mark.parametrize("limit", [1, 2])
def test_out_of_processes_in_a_pids_cgroup_is_one_line_and_exit_6(
    limit: int, nothing_left: None
) -> None:
    # 1: no room for the guard; 2: the guard, but no room for CMD.
    res = run_zombiectl_in_pids_cgroup(limit, ["check", "--", "/bin/true"])
    assert res.returncode == 6, res.stderr
    lines = [line for line in res.stderr.splitlines() if "warning" not in line]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr


def test_no_process_left_for_the_guard_is_one_line_and_exit_6(nothing_left: None) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _NO_FORK],
        capture_output=True, text=True, timeout=GLOBAL_TIMEOUT, env=_env(),
    )  # fmt: skip
    assert res.returncode == 6, res.stderr
    lines = [line for line in res.stderr.splitlines() if "warning" not in line]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "guard" in lines[0]


# --------------------------------------------------------------------------- pinned


def test_pinned_process_is_signalled_only_while_it_is_the_same() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        start = starttime_of(child.pid)
        assert start is not None
        assert Pinned.open(child.pid, start + 1) is None  # another start: another process
        pinned = Pinned.open(child.pid, start)
        assert pinned is not None
        try:
            assert pinned.signal(signal.SIGKILL)
        finally:
            pinned.close()
        assert child.wait(timeout=GLOBAL_TIMEOUT) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# --------------------------------------------------------------------------- deadlines

# CMD leaves a daemon and exits; 0.8 s later the daemon makes five zombies it never reaps.
DAEMON_LEAKS_LATER = r"""
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(0.8)
    for _ in range(5):
        if os.fork() == 0:
            os._exit(0)
    while True:
        time.sleep(60)
os._exit(0)
"""


def test_duration_is_honoured_after_cmd_exits(nothing_left: None) -> None:
    res = check("--json", "--duration", "2", "--", sys.executable, "-c", DAEMON_LEAKS_LATER)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["zombies_at_end"] == 5 and report["exit_status"] == 0
    assert report["seconds"] >= 2


def test_timeout_ends_the_tree_and_fails_with_reason_timeout(nothing_left: None) -> None:
    res = check("--json", "--timeout", "1", "--grace", "0.2", "--", "sleep", "30")
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["timed_out"] is True and report["ended_by_check"] is True
    assert any(r.startswith("timeout") for r in report["reasons"])


def test_timeout_with_pid_ends_only_the_check(nothing_left: None) -> None:
    target = subprocess.Popen(["sleep", "60"])
    try:
        port = _free_port()
        res = check(
            "--json", "--pid", str(target.pid), "--tcp", str(port), "--ready-timeout", "30",
            "--timeout", "1",
        )  # fmt: skip
        assert res.returncode == 1, res.stderr
        assert json.loads(res.stdout)["timed_out"] is True
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()


@pytest.mark.parametrize(
    "args",
    [
        ["--timeout", "1", "--duration", "2", "--", "true"],
        ["--tcp", "9", "--duration", "2", "--", "true"],
        ["--timeout", "nan", "--", "true"],
        ["--user", "no-such-user-here", "--", "true"],
    ],
)
def test_bad_deadlines_are_usage_errors(args: list[str]) -> None:
    res = check(*args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The parent exits at once; its daemon child listens and echoes, forking a handler per
# connection and reaping each with a SIGCHLD handler.
DAEMON_SERVER = r"""
import os, signal, socket, sys
if os.fork():
    os._exit(0)
os.setsid()
def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
while True:
    try:
        conn, _ = srv.accept()
    except InterruptedError:
        continue
    if os.fork() == 0:
        srv.close()
        conn.sendall(conn.recv(4096))
        os._exit(0)
    conn.close()
"""


def test_the_listener_may_be_a_daemon_that_cmd_left(nothing_left: None) -> None:
    port = _free_port()
    res = check(
        "--json", "--tcp", str(port), "--clients", "5", "--settle", "0.2",
        "--", sys.executable, "-c", DAEMON_SERVER, str(port),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["echoes_ok"] == 5 and report["zombies_at_end"] == 0


# --------------------------------------------------------------------------- privileges


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="only root may run CMD as another user")
def test_user_runs_cmd_as_that_user_with_exact_counts(nothing_left: None) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    script = (
        "echo ids $(id -u) $(id -g) $(id -G); sleep 0.05 & sleep 0.05 & sleep 0.05 & exec sleep 0.5"
    )
    res = check("--json", "--user", "nobody", "--", "/bin/sh", "-c", script)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    ids = next(line for line in res.stderr.splitlines() if line.startswith("ids "))
    assert ids.split()[1:] == [str(nobody.pw_uid), str(nobody.pw_gid), str(nobody.pw_gid)]
    # three command substitutions and three jobs
    assert report["zombies_at_end"] == 3 and report["children"] == 6
    assert "runs as root" not in res.stderr


def test_cmd_as_root_without_user_is_warned_in_one_line(nothing_left: None) -> None:
    res = check("--", "true")
    warned = [line for line in res.stderr.splitlines() if "runs as root" in line]
    assert len(warned) == (1 if os.geteuid() == 0 else 0)


# --------------------------------------------------------------------------- counting


@pytest.fixture(scope="module")
def clone_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("clone"), PROGRAMS / "clone_parent.c")


@pytest.mark.needs_cc
def test_a_clone_parent_sibling_and_its_zombies_are_members(
    clone_parent: Path, nothing_left: None
) -> None:
    res = check("--json", "--max-zombie-age", "1", "--", str(clone_parent))
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert any("lived" in r for r in report["reasons"]), report["reasons"]
    assert report["children"] == 6  # the sibling and its five
    assert report["max_zombies"] == 5


# Ignores SIGCHLD: the kernel reaps each child as it exits, so none is ever a zombie.
SIG_IGN_PARENT = r"""
import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for _ in range(30):
    if os.fork() == 0:
        os._exit(0)
time.sleep(0.5)
"""


def test_children_of_a_sig_ign_parent_are_never_zombies(nothing_left: None) -> None:
    res = check("--json", "--", sys.executable, "-c", SIG_IGN_PARENT)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["children"] == 30
    assert report["max_zombies"] == 0 and report["zombies_at_end"] == 0


# Never waits; each handler replies, closes, and lingers 1.5 s before it exits.
LINGERING = r"""
import os, socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
while True:
    conn, _ = srv.accept()
    if os.fork() == 0:
        srv.close()
        conn.sendall(conn.recv(4096))
        conn.close()
        time.sleep(1.5)
        os._exit(0)
    conn.close()
"""


def test_handlers_that_exit_late_are_waited_for_and_counted(nothing_left: None) -> None:
    port = _free_port()
    res = check(
        "--json", "--tcp", str(port), "--clients", "5", "--settle", "0.2",
        "--", sys.executable, "-c", LINGERING, str(port),
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["zombies_at_end"] == 5 and report["still_running_after_settle"] == 0
    assert report["processes_ended_by_check"] == 0 and report["not_reaped_by_parent"] == 5


def test_handlers_still_running_after_settle_max_are_reported(nothing_left: None) -> None:
    port = _free_port()
    res = check(
        "--json", "--tcp", str(port), "--clients", "5", "--settle", "0", "--settle-max", "0.2",
        "--", sys.executable, "-c", LINGERING, str(port),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["still_running_after_settle"] == 5 and report["zombies_at_end"] == 0
    # The teardown ended them: never the program's zombies.
    assert report["processes_ended_by_check"] == 5 and report["max_zombies"] == 0


# --------------------------------------------------------------------------- CMD's streams


@pytest.mark.parametrize(("mode", "got"), [(None, "got[]"), ("inherit", "got[hello]")])
def test_cmd_reads_dev_null_unless_stdin_is_inherited(
    mode: str | None, got: str, nothing_left: None
) -> None:
    args = ["--stdin", mode] if mode else []
    res = subprocess.run(
        [sys.executable, "-m", "zombiectl", "check", *args, "--",
         "/bin/sh", "-c", 'read x; echo "got[$x]"'],
        input="hello\n", capture_output=True, text=True, timeout=GLOBAL_TIMEOUT, env=_env(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert got in res.stdout.splitlines()


def test_output_past_the_limit_is_cut_and_said(nothing_left: None) -> None:
    prog = "import sys; sys.stdout.write('a' * 5000 + 'END'); sys.stdout.flush()"
    res = check("--json", "--output-limit", "100", "--", sys.executable, "-c", prog)
    assert res.returncode == 0, res.stderr
    json.loads(res.stdout)  # CMD's output went to stderr, not into the JSON
    assert "a" * 100 in res.stderr and "a" * 101 not in res.stderr
    assert "output past 100 bytes not shown" in res.stderr and "END" not in res.stderr


def test_capture_keeps_head_and_tail_and_says_what_was_cut() -> None:
    from zombiectl.check.output import Capture

    cap = Capture(10, None)
    for chunk in (b"HEAD", b"x" * 100, b"TAIL!"):
        cap.feed(chunk)
    text = cap.text()
    assert text.startswith("HEADx") and text.endswith("TAIL!")
    assert "[99 bytes cut]" in text and cap.total == 109


def test_a_member_that_will_not_die_is_named_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zombiectl.check.verdict import Facts, Limits, grade
    from zombiectl.supervise import teardown
    from zombiectl.supervise.observer import Observer
    from zombiectl.supervise.tree import Tree

    child = subprocess.Popen(["sleep", "60"])
    try:
        tree = Tree(0, 0, 0.0)
        tree.add_root(child.pid, 0.0, starttime_of(child.pid))
        # SIGKILL that never lands, as for a process in uninterruptible sleep.
        monkeypatch.setattr(teardown, "signal_members", lambda members, sig: 0)
        stuck = teardown.end_members(
            Observer(tree, None, 0.1), lambda: None, time.monotonic() + 0.1
        )
        assert [s.pid for s in stuck] == [child.pid]
        assert stuck[0].describe() == f"pid {child.pid} sleep (state S)"
        facts = Facts(["x"], 1, "run", None, 1.0, None, stuck=[stuck[0].describe()])
        assert any(f"could not end pid {child.pid}" in r for r in grade(facts, Limits()).reasons)
    finally:
        child.kill()
        child.wait()


def test_after_sigkill_the_guard_ends_members_but_not_a_group_they_joined(
    nothing_left: None,
) -> None:
    foreign = subprocess.Popen(["sleep", "60"], process_group=0)
    try:
        proc = start_check("--duration", "60", "--", sys.executable, "-c", HOSTILE,
                           str(foreign.pid))  # fmt: skip
        try:
            cmd, kid = ready_pids(proc)
            starts = {pid: starttime_of(pid) for pid in (cmd, kid)}
        finally:
            proc.kill()
            proc.communicate()
        assert wait_until(lambda: all(gone(pid, st) for pid, st in starts.items()), 15)
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def test_a_fork_seen_before_its_parents_joins_when_the_parent_does() -> None:
    from zombiectl.proc.events import Event
    from zombiectl.supervise.observer import Observer
    from zombiectl.supervise.tree import Tree

    class Events:
        lost = 0

        def __init__(self, batch: list[Event]) -> None:
            self.batch = batch

        def read(self) -> list[Event]:
            out, self.batch = self.batch, []
            return out

    # Pids past any pid_max: nothing on this machine answers for them in /proc.
    root, child, grandchild, stranger = 5_000_001, 5_000_002, 5_000_003, 5_000_004
    tree = Tree(root, 1, 0.0)
    events = Events(
        [
            Event("fork", grandchild, child, 1.0),  # delivered first, from another CPU
            Event("fork", stranger, 77, 1.0),
            Event("fork", child, root, 0.9),
        ]
    )
    obs = Observer(tree, events, 0.1)  # type: ignore[arg-type]
    obs.step()
    assert {child, grandchild} <= set(tree.members) and stranger not in tree.members


# A burst: a binary tree of 127 processes made as fast as fork allows, every one with its
# death signal off and SIGTERM ignored; "ready" once the last leaf exists.
BURST = r"""
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
r, w = os.pipe()
def grow(depth):
    libc.prctl(1, 0, 0, 0, 0)
    if depth == 0:
        os.write(w, b"x")
        return
    for _ in range(2):
        if os.fork() == 0:
            grow(depth - 1)
            while True:
                time.sleep(60)
grow(6)
got = 0
while got < 64:
    got += len(os.read(r, 64))
sys.stderr.write("ready 0\n")
sys.stderr.flush()
while True:
    time.sleep(60)
"""


def test_sigkill_right_after_a_burst_of_forks_leaves_nothing(nothing_left: None) -> None:
    proc = start_check("--duration", "60", "--", sys.executable, "-c", BURST)
    try:
        ready_pids(proc)
    finally:
        proc.kill()
        proc.communicate()
    assert wait_until(nothing_under_us, 30), describe(descendants_of(os.getpid()))
