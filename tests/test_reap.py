"""`zombiectl reap` against real parents (Python and C), plus the ladder on a fake clock.

System tests run `python -m zombiectl reap ...` as a subprocess against parents from
tests/proctools.py; a parent in `record` mode logs every signal it receives, which is how
the refusal and consent tests prove that nothing was signalled.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from conftest import run_zombiectl
from proctools import (
    GLOBAL_TIMEOUT,
    compile_c_parent,
    read_line,
    reap_by_pid,
    start_ticks,
    terminate,
    unshare_works,
    uptime,
    wait_until,
    zombie_children,
)

from zombiectl.errors import BadUsage, NoSuchProcess
from zombiectl.proc import identity as safety
from zombiectl.proc.identity import (
    SendResult,
    SendStatus,
    Target,
    read_identity,
    send_signal_safely,
)
from zombiectl.proc.records import PF_KTHREAD, ProcIdentity
from zombiectl.proc.table import child_pids, read_proc
from zombiectl.reaping.ladder import (
    DENIED,
    REAPED,
    REFUSED,
    REMAINING,
    Ladder,
    ParentResult,
    ReapReport,
    execute,
    make_plan,
    planned_report,
    still_zombies,
)

PIDNS = str(Path(__file__).parent / "programs" / "pidns.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")

NO_PID = str(2**22 + 7)  # above any pid_max


@pytest.fixture(scope="module")
def c_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("no C compiler")
    return compile_c_parent(tmp_path_factory.mktemp("cparent"))


def reap_json(*args: str, timeout: float = GLOBAL_TIMEOUT) -> tuple[int, dict]:
    res = run_zombiectl("reap", "--json", *args, timeout=timeout)
    assert res.stdout, res.stderr
    return res.returncode, json.loads(res.stdout)


def only(data: dict, pid: int) -> dict:
    rows = [p for p in data["parents"] if p["pid"] == pid]
    assert len(rows) == 1, data
    return rows[0]


def run_while_adopting(args: list[str], zombies: list[int]) -> tuple[int, dict, list[int]]:
    """Run reap while this session (a subreaper) reaps the zombies it adopts, as init would."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "reap", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    reaped: list[int] = []
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        reaped += reap_by_pid([z for z in zombies if z not in reaped])
        time.sleep(0.01)
    out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    assert out, err
    return proc.returncode, json.loads(out), reaped


# --------------------------------------------------------------------------- the ladder, for real


@pytest.mark.parametrize("lang", ["py", pytest.param("c", marks=pytest.mark.needs_cc)])
def test_parent_that_reaps_on_sigchld_is_cleared_by_one_nudge(parent, c_parent_opt, lang) -> None:
    p = parent("all", 6, exe=c_parent_opt(lang))
    rc, data = reap_json("--pid", str(p.pid), "--yes")
    assert rc == 0
    row = only(data, p.pid)
    assert row["zombies_before"] == 6 and row["zombies_after"] == 0
    assert row["result"] == "reaped" and row["actions"] == ["SIGCHLD"]
    assert data["reaped"] == 6 and data["remaining"] == 0
    assert p.proc.poll() is None  # nudged, not killed
    assert zombie_children(p.pid) == []


@pytest.mark.parametrize("lang", ["py", pytest.param("c", marks=pytest.mark.needs_cc)])
def test_one_per_signal_parent_is_cleared_by_repeated_nudges(parent, c_parent_opt, lang) -> None:
    p = parent("one", 25, exe=c_parent_opt(lang))
    rc, data = reap_json("--pid", str(p.pid), "--yes", "--kill-parent", "--force")
    assert rc == 0, data
    row = only(data, p.pid)
    assert row["result"] == "reaped" and row["zombies_after"] == 0
    assert row["actions"] == ["SIGCHLD"]  # never escalated, although allowed to
    assert row["sigchld_sent"] >= 2
    assert p.proc.poll() is None


@pytest.mark.parametrize("lang", ["py", pytest.param("c", marks=pytest.mark.needs_cc)])
def test_never_reaping_parent_remains_without_kill_parent(parent, c_parent_opt, lang) -> None:
    p = parent("never", 4, exe=c_parent_opt(lang))
    rc, data = reap_json("--pid", str(p.pid), "--yes", "--timeout", "0.3")
    assert rc == 1
    row = only(data, p.pid)
    assert row["result"] == "remaining" and row["zombies_after"] == 4
    assert row["actions"] == ["SIGCHLD"]
    assert "--kill-parent" in row["reason"]
    assert p.proc.poll() is None
    assert len(zombie_children(p.pid)) == 4


@pytest.mark.parametrize("lang", ["py", pytest.param("c", marks=pytest.mark.needs_cc)])
def test_kill_parent_hands_zombies_to_the_subreaper(parent, c_parent_opt, lang) -> None:
    p = parent("never", 5, exe=c_parent_opt(lang))
    rc, data, reaped = run_while_adopting(
        ["--pid", str(p.pid), "--yes", "--kill-parent", "--timeout", "1.5"], p.zombie_pids
    )
    assert sorted(reaped) == p.zombie_pids  # this session adopted and reaped all five
    assert rc == 0, data
    row = only(data, p.pid)
    assert row["actions"] == ["SIGCHLD", "SIGTERM"]
    assert row["result"] == "reaped" and (row["zombies_before"], row["zombies_after"]) == (5, 0)
    assert p.proc.wait(GLOBAL_TIMEOUT) == -signal.SIGTERM


@pytest.mark.parametrize("lang", ["py", pytest.param("c", marks=pytest.mark.needs_cc)])
def test_parent_ignoring_sigterm_needs_force(parent, c_parent_opt, lang) -> None:
    p = parent("noterm", 3, exe=c_parent_opt(lang))
    rc, data = reap_json("--pid", str(p.pid), "--yes", "--kill-parent", "--timeout", "0.3")
    assert rc == 1
    row = only(data, p.pid)
    assert row["actions"] == ["SIGCHLD", "SIGTERM"]
    assert "--force" in row["reason"] and row["zombies_after"] == 3
    assert p.proc.poll() is None

    rc, data, reaped = run_while_adopting(
        ["--pid", str(p.pid), "--yes", "--kill-parent", "--force", "--timeout", "0.5"],
        p.zombie_pids,
    )
    assert rc == 0, data
    assert only(data, p.pid)["actions"] == ["SIGCHLD", "SIGTERM", "SIGKILL"]
    assert p.proc.wait(GLOBAL_TIMEOUT) == -signal.SIGKILL
    assert sorted(reaped) == p.zombie_pids


def test_parent_that_exits_during_the_run(parent) -> None:
    p = parent("exit", 4)
    rc, data, reaped = run_while_adopting(
        ["--pid", str(p.pid), "--yes", "--timeout", "10"], p.zombie_pids
    )
    assert rc == 0, data
    row = only(data, p.pid)
    assert row["result"] == "reaped" and "exited" in row["reason"]
    assert row["actions"] == ["SIGCHLD"]
    assert sorted(reaped) == p.zombie_pids
    assert p.proc.wait(GLOBAL_TIMEOUT) == 0


def test_zombie_target_acts_on_its_parent_once(parent) -> None:
    p = parent("all", 5)
    zs = p.zombie_pids
    rc, data = reap_json(
        "--zombie", str(zs[0]), "--zombie", str(zs[3]), "--pid", str(p.pid), "--yes"
    )
    assert rc == 0
    assert [r["pid"] for r in data["parents"]] == [p.pid]
    assert only(data, p.pid)["sigchld_sent"] == 1


def test_several_parents_in_one_run(parent) -> None:
    good = parent("all", 3)
    stuck = parent("never", 2)
    rc, data = reap_json("--pid", str(good.pid), "--pid", str(stuck.pid), "--yes")
    assert rc == 1  # one parent kept its zombies
    assert [r["pid"] for r in data["parents"]] == [good.pid, stuck.pid]  # biggest first
    assert only(data, good.pid)["result"] == "reaped"
    assert only(data, stuck.pid)["result"] == "remaining"
    assert (data["reaped"], data["remaining"]) == (3, 2)


def test_pidfd_fallback_works_and_says_so(parent) -> None:
    p = parent("all", 3)
    res = run_zombiectl("reap", "--pid", str(p.pid), "--yes", "--verbose", "--no-pidfd")
    assert res.returncode == 0, res.stderr
    assert "pidfds are not available here" in res.stderr
    assert "via pid+create-time: sent" in res.stderr
    assert zombie_children(p.pid) == []


def test_table_output_when_piped(parent) -> None:
    p = parent("all", 2)
    res = run_zombiectl("reap", "--pid", str(p.pid), "--yes")
    assert res.returncode == 0, res.stderr
    assert "\x1b[" not in res.stdout
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["PARENT", "NAME", "BEFORE", "AFTER"]
    assert lines[1].split()[0] == str(p.pid) and "reaped" in lines[1]
    assert lines[-1] == "reaped 2 zombies"


# --------------------------------------------------------------------------- refusals


def test_pid1_and_kernel_threads_are_refused() -> None:
    kthread = next(
        (
            pid
            for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if pid > 2 and (i := read_identity(pid)) is not None and i.flags & PF_KTHREAD
        ),
        2,
    )
    rc, data = reap_json(
        "--pid", "1", "--pid", "2", "--pid", str(kthread), "--yes", "--kill-parent", "--force"
    )
    assert rc == 1
    for pid in {1, 2, kthread}:
        row = only(data, pid)
        assert row["result"] == "refused" and row["actions"] == [] and row["reason"]
    assert "init" in only(data, 1)["reason"]
    assert only(data, 2)["reason"].startswith("kthreadd")  # pid 2 here is kthreadd...
    assert "kernel thread" in only(data, kthread)["reason"]


def test_kernel_threads_are_known_by_flag_not_by_pid() -> None:
    kthreadd = read_identity(2)
    assert kthreadd is not None and kthreadd.flags & PF_KTHREAD and kthreadd.ppid == 0
    # ...but a pid 2 without the flag (inside a PID namespace) is an ordinary process,
    ordinary = ProcIdentity(2, 1, "S", "python", 0x400000, 100)
    assert safety.refusal_reason(2, ordinary) is None
    # and a kernel thread is refused whatever its pid.
    worker = ProcIdentity(4242, 2, "I", "kworker/0:1", 0x04208060, 100)
    assert safety.refusal_reason(4242, worker) == (
        "a kernel thread: its children are the kernel's business"
    )


def test_ancestors_of_zombiectl_are_refused_and_never_signalled(parent, tmp_path) -> None:
    """zombiectl runs under bash under a parent with zombies; both are its ancestors."""
    log = tmp_path / "signals"
    inner = (
        f"{sys.executable} -m zombiectl reap --json --yes --kill-parent --force "
        "--pid {pid} --zombie {zombie} --pid $$; echo zombiectl $?"
    )
    p = parent("record", 3, log=log, cmd=["bash", "-c", inner])
    out = p.read_line()
    data = json.loads(out)
    assert p.read_line().split() == ["zombiectl", "1"]  # refused: exit 1
    assert p.read_line().split() == ["rc", "0"]  # bash lived on to the end
    bash_pid = next(r["pid"] for r in data["parents"] if r["pid"] != p.pid)
    assert {r["pid"] for r in data["parents"]} == {p.pid, bash_pid}
    for row in data["parents"]:
        assert row["result"] == "refused" and row["actions"] == []
        assert "ancestor of zombiectl" in row["reason"]
    assert only(data, p.pid)["zombies_after"] == 3
    assert p.user_signals() == []
    assert p.proc.poll() is None and len(zombie_children(p.pid)) == 3


def test_zombiectl_refuses_its_own_pid_in_process() -> None:
    assert safety.refusal_reason(os.getpid()) == "this is zombiectl itself"
    assert "ancestor" in (safety.refusal_reason(os.getppid()) or "")
    assert safety.is_self_or_ancestor(os.getppid())
    assert safety.is_self_or_ancestor(1) or read_proc(1) is None
    assert safety.refusal_reason(1) is not None


# --------------------------------------------------------------------------- PID namespaces


@dataclass
class NamespaceInit:
    """A container-like PID namespace whose init holds zombies (tests/programs/pidns.py)."""

    proc: subprocess.Popen[str]  # `unshare`, here; the init is its only child
    pid: int  # the init, as seen from here
    log: Path  # the ending signals the init received

    def endings(self) -> list[str]:
        return self.log.read_text().split("\n")[:-1]


@pytest.fixture
def namespace_init(tmp_path: Path) -> Iterator[NamespaceInit]:
    if not unshare_works():
        pytest.skip("needs root and a working `unshare --pid --fork --mount-proc`")
    log = tmp_path / "ns-signals"
    log.touch()
    argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, PIDNS, "init", "3"]
    proc = subprocess.Popen(
        [*argv, str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and read_line(proc.stdout).strip() == "ready"
        kids: list[int] = []
        assert wait_until(lambda: bool(kids.extend(child_pids(proc.pid)) or kids))
        init = NamespaceInit(proc, kids[0], log)
        assert wait_until(lambda: len(zombie_children(init.pid)) == 3)
        assert safety.namespace_pids(init.pid)[-1] == 1  # type: ignore[index]
        yield init
    finally:
        if proc.stdin:
            proc.stdin.close()  # the init exits; the kernel clears its namespace
        try:
            proc.wait(GLOBAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        terminate(proc, signal.SIGKILL)  # closes the pipes; ends it only if still running


def created(pid: int) -> float:
    """pid's start time from psutil, an independent reader of the same fact."""
    return psutil.Process(pid).create_time()


@pytest.mark.root
def test_a_namespace_init_is_nudged_but_never_ended(namespace_init: NamespaceInit) -> None:
    init = namespace_init
    born = created(init.pid)
    zombies = zombie_children(init.pid)
    rc, data = reap_json(
        "--pid", str(init.pid), "--kill-parent", "--force", "--yes", "--timeout", "0.3"
    )
    assert rc == 1, data
    row = only(data, init.pid)
    assert row["result"] == "refused" and row["actions"] == ["SIGCHLD"]
    assert "init (PID 1) of its own PID namespace" in row["reason"]
    assert "would end every process in that container" in row["reason"]
    assert "docker run --init" in row["reason"]
    assert init.proc.poll() is None and created(init.pid) == born  # the same init, running
    assert read_proc(init.pid).state != "Z"  # type: ignore[union-attr]
    assert zombie_children(init.pid) == zombies
    assert init.endings() == []  # no SIGTERM reached it (it would be logged, not ignored)

    res = run_zombiectl("reap", "--pid", str(init.pid), "--kill-parent", "--force", "--dry-run")
    assert res.returncode == 0
    assert "never SIGTERM or SIGKILL: it is the init (PID 1) of its own PID namespace" in (
        " ".join(res.stdout.split())
    )


@pytest.mark.root
def test_pid1_is_refused_where_it_is_not_an_ancestor(namespace_init: NamespaceInit) -> None:
    """`nsenter` puts zombiectl in the namespace with its parent outside: there, PID 1
    is not an ancestor of zombiectl, so only the init rule can refuse to end it."""
    if shutil.which("nsenter") is None:
        pytest.skip("needs nsenter")
    init = namespace_init
    born = created(init.pid)
    zombies = zombie_children(init.pid)
    argv = ["nsenter", "--target", str(init.pid), "--pid", "--mount", "--"]
    argv += [sys.executable, "-m", "zombiectl", "reap", "--json", "--pid", "1"]
    argv += ["--kill-parent", "--force", "--yes", "--timeout", "0.3"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=GLOBAL_TIMEOUT)
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    row = only(data, 1)
    assert row["result"] == "refused" and row["actions"] == [], row
    assert row["reason"].startswith("PID 1 is init: ending it ends every process"), row
    assert init.proc.poll() is None and created(init.pid) == born  # the same init, running
    assert zombie_children(init.pid) == zombies
    assert init.endings() == []  # no SIGTERM reached it (it would be logged, not ignored)


@pytest.mark.root
@pytest.mark.parametrize("use_pidfd", [True, False])
def test_signalling_refuses_to_end_a_namespace_init(namespace_init, use_pidfd) -> None:
    """The last line of defence: whatever a caller planned, the target is checked."""
    target = Target.of(namespace_init.pid)
    assert target is not None
    sent: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        res = send_signal_safely(
            target, sig, use_pidfd=use_pidfd, sender=lambda fd, s: sent.append(s)
        )
        assert res.status is SendStatus.REFUSED and "PID namespace" in res.detail
    nudge = send_signal_safely(
        target, signal.SIGCHLD, use_pidfd=use_pidfd, sender=lambda fd, s: sent.append(s)
    )
    assert nudge.status is SendStatus.SENT and sent == [signal.SIGCHLD]


@pytest.mark.root
def test_reap_all_inside_a_namespace(tmp_path: Path) -> None:
    """A host in miniature: an ordinary pid 2 is reaped, a container's init survives."""
    if not unshare_works():
        pytest.skip("needs root and a working `unshare --pid --fork --mount-proc`")
    log = tmp_path / "inner-signals"
    log.touch()
    args = ["reap", "--all", "--kill-parent", "--force", "--yes", "--json", "--timeout", "0.3"]
    res = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            sys.executable,
            PIDNS,
            "scenario",
            "3",
            str(log),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=2 * GLOBAL_TIMEOUT,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ready"] and out["rc"] == 1, out  # 1: one parent was refused
    data = json.loads(out["output"])
    assert out["leaker"] == 2
    pid2 = only(data, 2)
    assert pid2["result"] == REAPED and pid2["actions"] == ["SIGCHLD", "SIGTERM"], pid2
    assert out["leaker_ended"] == "SIGTERM"
    inner = only(data, out["inner"])
    assert inner["result"] == REFUSED and inner["actions"] == ["SIGCHLD"], inner
    assert "a container's init" in inner["reason"]
    assert out["inner_same"] and out["inner_state"] != "Z" and out["inner_zombies"] == 3
    assert log.read_text() == ""
    assert (data["reaped"], data["remaining"]) == (3, 3)


# --------------------------------------------------------------------------- identity


def test_zombie_parent_is_identified_by_start_time(parent) -> None:
    born_after = uptime()
    p = parent("never", 2)
    born_before = uptime()
    plan = make_plan(zombies=[p.zombie_pids[0]])
    (row,) = plan.parents
    assert row.pid == p.pid and row.actionable and row.target is not None
    # The start times are field 22 as parsed here, fall between two readings of the
    # uptime taken around the births, and the parent is the older.
    slack = 2 / CLK_TCK + 0.01
    assert row.target.starttime == start_ticks(p.pid)
    for z in p.zombie_pids:
        assert row.zombie_starts[z] == start_ticks(z)
        assert born_after - slack <= row.zombie_starts[z] / CLK_TCK <= born_before + slack
        assert row.target.starttime <= row.zombie_starts[z]


def test_zombie_whose_parent_pid_was_reused_sends_nothing(parent, tmp_path) -> None:
    """The race that cannot be caused on demand: the zombie's ppid, read, is reused by a
    younger process before its identity is read. The injected read says so."""
    p = parent("record", 2, log=tmp_path / "signals")
    zombie = p.zombie_pids[0]
    z_start = read_identity(zombie).starttime  # type: ignore[union-attr]

    def reused(pid: int) -> ProcIdentity | None:
        ident = read_identity(pid)
        if pid == p.pid and ident is not None:  # a process born after the zombie
            return ProcIdentity(pid, ident.ppid, "S", "someone-else", 0, z_start + 5)
        return ident

    plan = make_plan(zombies=[zombie], kill_parent=True, reader=reused)
    (row,) = plan.parents
    assert not row.actionable and row.target is None
    assert f"pid {p.pid} started after zombie {zombie}" in row.note
    report = execute(plan)
    assert report.parents[0].actions == [] and report.parents[0].result == REMAINING
    assert report.exit_code() == 1
    assert p.user_signals() == []  # nothing was sent to the real parent either
    assert len(zombie_children(p.pid)) == 2


def test_zombie_that_changes_parent_while_planning_follows_it(parent) -> None:
    p = parent("never", 1)
    zombie = p.zombie_pids[0]
    reads: list[int] = []

    def adopted_meanwhile(pid: int) -> ProcIdentity | None:
        ident = read_identity(pid)
        if pid == zombie and ident is not None:
            reads.append(pid)
            if len(reads) == 2:  # the second read: adopted by pid 1 in between
                return ProcIdentity(pid, 1, "Z", ident.name, ident.flags, ident.starttime)
        return ident

    plan = make_plan(zombies=[zombie], reader=adopted_meanwhile)
    assert [r.pid for r in plan.parents] == [p.pid]  # read again: still p's
    assert len(reads) >= 4 and plan.parents[0].actionable  # a second zombie-parent-zombie round


def test_a_zombie_pid_with_another_start_time_is_not_that_zombie(parent) -> None:
    p = parent("never", 2)
    a, b = p.zombie_pids
    starts = {z: read_identity(z).starttime for z in (a, b)}  # type: ignore[union-attr]
    assert still_zombies([a, b], starts) == [a, b]
    assert still_zombies([a, b], {a: starts[a], b: starts[b] + 1}) == [a]
    target = Target.of(p.pid)
    assert target is not None
    sent: list[int] = []
    res = send_signal_safely(
        target,
        signal.SIGCHLD,
        [a],
        child_starts={a: starts[a] + 1},
        sender=lambda fd, s: sent.append(s),
    )
    assert res.status is SendStatus.MOVED and sent == []


# --------------------------------------------------------------------------- stopped


def sigterm_pending(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        masks = dict(line.split(":", 1) for line in f if line.startswith(("SigPnd", "ShdPnd")))
    bit = 1 << (signal.SIGTERM - 1)
    return any(int(v, 16) & bit for v in masks.values())


def test_stopped_parent_is_named_and_its_pending_sigterm_reported(parent) -> None:
    p = parent("never", 2)
    os.kill(p.pid, signal.SIGSTOP)
    assert wait_until(lambda: read_proc(p.pid).state == "T")  # type: ignore[union-attr]
    try:
        res = run_zombiectl("reap", "--pid", str(p.pid), "--kill-parent", "--dry-run")
        assert "the parent is stopped (state T)" in " ".join(res.stdout.split())
        rc, data = reap_json("--pid", str(p.pid), "--kill-parent", "--yes", "--timeout", "0.3")
        row = only(data, p.pid)
        assert rc == 1 and row["actions"] == ["SIGCHLD", "SIGTERM"], row
        assert row["result"] == REMAINING and "outlived" not in row["reason"]
        assert "SIGTERM is pending and will end it when it is continued" in row["reason"]
        assert sigterm_pending(p.pid)  # as the report says
        assert read_proc(p.pid).state == "T"  # type: ignore[union-attr]  # not continued
    finally:
        os.kill(p.pid, signal.SIGCONT)
    assert p.proc.wait(GLOBAL_TIMEOUT) == -signal.SIGTERM  # the pending SIGTERM, as promised
    assert wait_until(
        lambda: (
            sorted(reap_by_pid(p.zombie_pids)) == p.zombie_pids
            or not any(read_proc(z) for z in p.zombie_pids)
        ),
        30,
    )


# --------------------------------------------------------------------------- consent


def test_no_terminal_and_no_yes_signals_nothing(parent, tmp_path) -> None:
    p = parent("record", 3, log=tmp_path / "signals")
    res = run_zombiectl("reap", "--pid", str(p.pid), "--kill-parent", "--force")
    assert res.returncode == 2
    assert res.stderr.strip().startswith(
        "zombiectl: error: not a terminal, so not asking: add --yes"
    )
    assert str(p.pid) in res.stdout  # the plan is shown
    res = run_zombiectl("reap", "--pid", str(p.pid), "--json")
    assert res.returncode == 2 and res.stdout == ""
    res = run_zombiectl("reap", "--pid", str(p.pid), "--dry-run", "--json", "--kill-parent")
    assert res.returncode == 0
    row = only(json.loads(res.stdout), p.pid)
    assert row["actions"] == ["SIGCHLD", "SIGTERM"] and row["zombies_after"] == 3
    assert p.user_signals() == []
    assert p.proc.poll() is None and len(zombie_children(p.pid)) == 3


def _run_on_pty(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run zombiectl on a pseudo-terminal; answer its question; return (rc, what it wrote)."""
    master, slave = pty.openpty()
    env = dict(os.environ, NO_COLOR="1", COLUMNS="160")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    answered = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(GLOBAL_TIMEOUT), seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_terminal_asks_and_no_means_nothing(parent, tmp_path) -> None:
    p = parent("record", 2, log=tmp_path / "signals")
    rc, text = _run_on_pty(["reap", "--pid", str(p.pid)], b"n\n")
    assert f"Signal 1 parent: {p.pid} (" in text and "SIGCHLD" in text
    assert rc == 2, text  # "n" is no consent, like no terminal and no --yes
    assert "zombiectl: error: not confirmed: nothing was signalled" in text
    assert "Traceback" not in text
    assert p.user_signals() == []


def test_terminal_asks_and_yes_acts(parent) -> None:
    p = parent("all", 3)
    rc, text = _run_on_pty(["reap", "--pid", str(p.pid)], b"y\n")
    assert rc == 0, text
    assert "reaped 3 zombies" in text
    assert zombie_children(p.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_before_the_next_signal(parent, tmp_path, sig) -> None:
    p = parent("record", 2, log=tmp_path / "signals")
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zombiectl",
            "reap",
            "--pid",
            str(p.pid),
            "--yes",
            "--kill-parent",
            "--force",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert wait_until(lambda: p.user_signals() != [])  # the first nudge arrived
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130)
    assert err.strip() == "zombiectl: interrupted: no further signal was sent"
    assert p.user_signals() == [(signal.SIGCHLD, proc.pid)]  # no SIGTERM followed
    assert len(zombie_children(p.pid)) == 2


# --------------------------------------------------------------------------- permission


def _setpriv_prefix(uid: int) -> list[str]:
    # dac_read_search: the interpreter may live under a directory only root can read;
    # it grants no right to signal another user's processes.
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]


@pytest.mark.root
def test_another_users_parent_is_denied(parent, tmp_path) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv")
    log = tmp_path / "signals"
    p = parent("record", 3, log=log, uid=65533)
    res = subprocess.run(
        [
            *_setpriv_prefix(65534),
            sys.executable,
            "-m",
            "zombiectl",
            "reap",
            "--json",
            "--yes",
            "--kill-parent",
            "--force",
            "--pid",
            str(p.pid),
        ],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 4, res.stderr
    row = only(json.loads(res.stdout), p.pid)
    assert row["result"] == "denied" and row["actions"] == []
    assert "EPERM" in row["reason"]
    assert p.user_signals() == []
    assert len(zombie_children(p.pid)) == 3


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["reap", "--pid", NO_PID, "--yes"], 3, f"no such process: {NO_PID}"),
        (["reap", "--zombie", NO_PID, "--yes"], 3, f"no such process: {NO_PID}"),
        (["reap", "--pid", "0"], 2, "not a process id"),
        (["reap", "--pid", "x"], 2, "not a process id"),
        (["reap"], 2, "name what to reap"),
        (["reap", "--all", "--force"], 2, "--force only goes with --kill-parent"),
        (["reap", "--all", "--timeout", "0"], 2, "--timeout"),
    ],
)
def test_bad_input_is_one_line(args, code, needle) -> None:
    res = run_zombiectl(*args)
    assert res.returncode == code
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_a_live_process_is_not_a_zombie(parent) -> None:
    p = parent("all", 1)
    res = run_zombiectl("reap", "--zombie", str(p.pid), "--yes")
    assert res.returncode == 2
    assert f"pid {p.pid} (python" in res.stderr and "is not a zombie" in res.stderr


def test_all_dry_run_includes_our_parent(parent) -> None:
    # --all is only ever planned here: acting would nudge other people's processes.
    p = parent("never", 2)
    rc, data = reap_json("--all", "--dry-run")
    assert rc == 0 and data["dry_run"] is True
    row = only(data, p.pid)
    assert row["zombies_before"] == 2 and row["actions"] == ["SIGCHLD"]


def test_help_has_an_example() -> None:
    res = run_zombiectl("reap", "--help")
    assert res.returncode == 0 and "zombiectl reap --pid 4242" in res.stdout


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_thousands_of_zombies_under_one_parent(parent) -> None:
    p = parent("one", 3000)
    rc, data = reap_json("--pid", str(p.pid), "--yes", timeout=5 * GLOBAL_TIMEOUT)
    assert rc == 0, data
    row = only(data, p.pid)
    assert (row["zombies_before"], row["zombies_after"]) == (3000, 0)
    assert row["actions"] == ["SIGCHLD"] and row["sigchld_sent"] >= 2


@pytest.mark.slow
def test_thousands_of_zombies_adopted_after_kill(parent) -> None:
    p = parent("never", 3000)
    rc, data, reaped = run_while_adopting(
        ["--pid", str(p.pid), "--yes", "--kill-parent", "--timeout", "3"], p.zombie_pids
    )
    assert rc == 0, data
    assert len(reaped) == 3000
    assert only(data, p.pid)["zombies_after"] == 0


# --------------------------------------------------------------------------- pid reuse


def test_ppid_change_after_pidfd_open_sends_nothing(parent) -> None:
    p = parent("never", 2)
    target = Target.of(p.pid)
    assert target is not None
    sent: list[int] = []
    opened: list[int] = []

    def opener(pid: int) -> int:
        fd = os.pidfd_open(pid)
        opened.append(pid)
        return fd

    def reader(pid: int):  # the zombies now name another parent: their parent changed
        ident = read_identity(pid)
        if ident is not None and pid in p.zombie_pids:
            return type(ident)(ident.pid, 1, ident.state, ident.name, ident.flags, ident.starttime)
        return ident

    res = send_signal_safely(
        target,
        signal.SIGCHLD,
        p.zombie_pids,
        use_pidfd=True,
        opener=opener,
        reader=reader,
        sender=lambda fd, sig: sent.append(sig),
    )
    assert opened == [p.pid] and sent == []
    assert res.status is SendStatus.MOVED


def test_real_race_parent_dies_between_open_and_check(parent) -> None:
    """The parent is killed right after the pidfd is opened: its zombies move to us."""
    p = parent("never", 2)
    target = Target.of(p.pid)
    assert target is not None
    sent: list[int] = []

    def opener(pid: int) -> int:
        fd = os.pidfd_open(pid)
        p.proc.kill()
        assert wait_until(lambda: all(read_proc(z).ppid == os.getpid() for z in p.zombie_pids))
        return fd

    res = send_signal_safely(
        target,
        signal.SIGCHLD,
        p.zombie_pids,
        use_pidfd=True,
        opener=opener,
        sender=lambda fd, sig: sent.append(sig),
    )
    assert sent == [] and res.status is SendStatus.GONE
    p.proc.wait()
    assert sorted(reap_by_pid(p.zombie_pids)) == p.zombie_pids


@pytest.mark.parametrize("use_pidfd", [True, False])
def test_different_start_time_is_never_signalled(parent, use_pidfd) -> None:
    p = parent("never", 1)
    real = Target.of(p.pid)
    assert real is not None
    stale = Target(p.pid, real.starttime - 1, real.name)  # the pid now names someone else
    sent: list[int] = []
    res = send_signal_safely(
        stale,
        signal.SIGCHLD,
        p.zombie_pids,
        use_pidfd=use_pidfd,
        sender=lambda a, b: sent.append(b),
    )
    assert sent == [] and res.status is SendStatus.GONE
    ok = send_signal_safely(real, signal.SIGCHLD, p.zombie_pids, use_pidfd=use_pidfd)
    assert ok.status is SendStatus.SENT and ok.via == ("pidfd" if use_pidfd else "pid+create-time")


# --------------------------------------------------------------------------- planning


def test_plan_groups_refuses_and_validates(parent) -> None:
    p = parent("never", 3)
    plan = make_plan([p.pid, 1], [p.zombie_pids[1]], kill_parent=True)
    assert {x.pid for x in plan.parents} == {p.pid, 1}  # the zombie named p.pid again
    mine = next(x for x in plan.parents if x.pid == p.pid)
    assert mine.zombie_pids == tuple(p.zombie_pids) and mine.actionable
    assert next(x for x in plan.parents if x.pid == 1).refused
    assert plan.steps() == ["SIGCHLD", "SIGTERM"]
    with pytest.raises(BadUsage):
        make_plan([], [p.pid])
    with pytest.raises(NoSuchProcess):
        make_plan([int(NO_PID)])
    with pytest.raises(BadUsage):
        make_plan()
    report = planned_report(plan)
    assert report.exit_code() == 0 and report.remaining == 3 + next(
        x.zombies for x in plan.parents if x.pid == 1
    )


def test_exit_codes() -> None:
    def r(result: str, before: int = 1, after: int = 0) -> ParentResult:
        return ParentResult(1, "x", before, after, [], result, "")

    assert ReapReport([r(REAPED)]).exit_code() == 0
    assert ReapReport([]).exit_code() == 0
    assert ReapReport([r(REMAINING, 2, 2)]).exit_code() == 1
    assert ReapReport([r(DENIED, 2, 2)]).exit_code() == 4
    assert ReapReport([r(DENIED, 2, 2), r("refused", 1, 1)]).exit_code() == 1
    assert ReapReport([r(DENIED, 2, 2), r(REAPED, 3, 0)]).exit_code() == 1


# --------------------------------------------------------------------------- ladder timing


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


class FakeParent:
    """A scripted parent in fake time: how it reacts to each signal, and when."""

    def __init__(
        self,
        clock: FakeClock,
        zombies: int,
        *,
        on_chld: str = "none",  # none | all | one | exit
        on_term: str = "die",  # die | ignore
        delay: float = 0.01,
        adopter_delay: float | None = 0.2,
        deny: bool = False,
        stopped: bool = False,
    ) -> None:
        self.clock = clock
        self.zombies = zombies
        self.alive = True
        self.on_chld = on_chld
        self.on_term = on_term
        self.delay = delay
        self.adopter_delay = adopter_delay
        self.deny = deny
        self.is_stopped = stopped  # a stopped process acts on nothing but SIGKILL
        self.sent: list[tuple[float, str]] = []
        self.pending: list[tuple[float, str]] = []

    def _apply(self) -> None:
        due = [e for e in self.pending if e[0] <= self.clock.now]
        self.pending = [e for e in self.pending if e[0] > self.clock.now]
        for _, what in sorted(due):
            if what == "reap-all":
                self.zombies = 0
            elif what == "reap-one":
                self.zombies = max(self.zombies - 1, 0)
            elif what == "die":
                self.alive = False
                if self.adopter_delay is not None:
                    self.pending.append((self.clock.now + self.adopter_delay, "reap-all"))

    def observe(self) -> tuple[int, bool]:
        self._apply()
        return self.zombies, self.alive

    def send(self, sig: int) -> SendResult:
        if self.deny:
            return SendResult(SendStatus.DENIED, "fake", "permission denied (EPERM)")
        if not self.alive:
            return SendResult(SendStatus.GONE, "fake", "gone")
        name = signal.Signals(sig).name
        self.sent.append((self.clock.now, name))
        at = self.clock.now + self.delay
        if self.is_stopped and name != "SIGKILL":
            return SendResult(SendStatus.SENT, "fake")  # pending until SIGCONT
        if name == "SIGCHLD" and self.on_chld != "none":
            self.pending.append(
                (at, {"all": "reap-all", "one": "reap-one", "exit": "die"}[self.on_chld])
            )
        if (name == "SIGTERM" and self.on_term == "die") or name == "SIGKILL":
            self.pending.append((at, "die"))
        return SendResult(SendStatus.SENT, "fake")

    def adopter(self) -> str | None:
        return "1 (init)"

    def stopped(self) -> str | None:
        return "stopped (state T)" if self.is_stopped and self.alive else None

    def names(self) -> list[str]:
        return [n for _, n in self.sent]


def ladder(view: FakeParent, clock: FakeClock, **kwargs: object) -> Ladder:
    return Ladder(view, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def test_ladder_one_nudge_for_a_parent_that_reaps_all() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 10, on_chld="all", delay=0.5)
    out = ladder(view, clock, timeout=2.0, kill_parent=True, force=True).run()
    assert out.result == REAPED and view.names() == ["SIGCHLD"]
    assert 0.5 <= clock.now < 0.6  # returned as soon as the reaping showed


def test_ladder_nudges_a_one_per_signal_parent_until_clear() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 7, on_chld="one", delay=0.3)
    out = ladder(view, clock, timeout=2.0, kill_parent=True, force=True).run()
    assert out.result == REAPED and view.names() == ["SIGCHLD"] * 7
    assert out.sigchld_sent == 7 and out.actions == ["SIGCHLD"]
    gaps = [b[0] - a[0] for a, b in zip(view.sent, view.sent[1:], strict=False)]
    assert all(0.3 <= g < 0.4 for g in gaps)  # the next nudge follows the progress, not the timeout


def test_ladder_without_kill_parent_waits_one_timeout_then_stops() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 3)
    out = ladder(view, clock, timeout=2.0, poll_max=0.05).run()
    assert out.result == REMAINING and view.names() == ["SIGCHLD"]
    assert 2.0 <= clock.now < 2.1 and view.alive


def test_ladder_sigterm_comes_after_the_timeout_and_adopter_reaps() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 3, delay=0.4, adopter_delay=0.7)
    out = ladder(view, clock, timeout=2.0, kill_parent=True).run()
    assert view.names() == ["SIGCHLD", "SIGTERM"]
    assert view.sent[1][0] >= 2.0  # SIGTERM only once SIGCHLD had its full timeout
    assert out.result == REAPED and "adopter reaped" in out.reason
    assert 2.0 + 0.4 + 0.7 <= clock.now < 2.0 + 0.4 + 0.7 + 0.1


def test_ladder_sigkill_only_with_force_and_after_the_timeout() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 3, on_term="ignore")
    out = ladder(view, clock, timeout=1.5, kill_parent=True).run()
    assert view.names() == ["SIGCHLD", "SIGTERM"] and out.result == REMAINING
    assert "--force" in out.reason and view.alive

    clock = FakeClock()
    view = FakeParent(clock, 3, on_term="ignore")
    out = ladder(view, clock, timeout=1.5, kill_parent=True, force=True).run()
    assert view.names() == ["SIGCHLD", "SIGTERM", "SIGKILL"]
    assert view.sent[2][0] - view.sent[1][0] >= 1.5
    assert out.result == REAPED and out.actions == ["SIGCHLD", "SIGTERM", "SIGKILL"]


def test_ladder_reports_an_adopter_that_does_not_reap() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 4, adopter_delay=None)
    out = ladder(view, clock, timeout=1.0, kill_parent=True, adoption_wait=3.0).run()
    assert out.result == REMAINING and out.adopter == "1 (init)"
    assert "4 adopted by 1 (init), not reaped within 3s" in out.reason
    term_at = view.sent[1][0]
    assert term_at + 0.01 + 3.0 <= clock.now < term_at + 0.01 + 3.1  # the check waits longer


def test_ladder_parent_that_exits_on_its_own() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 2, on_chld="exit", adopter_delay=0.1)
    out = ladder(view, clock, timeout=2.0).run()
    assert out.result == REAPED and view.names() == ["SIGCHLD"]
    assert "adopter reaped" in out.reason


def test_ladder_denied_sends_nothing_more() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 2, deny=True)
    out = ladder(view, clock, timeout=2.0, kill_parent=True, force=True).run()
    assert out.result == DENIED and out.actions == [] and clock.now == 0.0


def test_ladder_stopped_parent_reports_sigterm_pending() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 3, on_chld="all", stopped=True)
    out = ladder(view, clock, timeout=1.0, kill_parent=True).run()
    assert view.names() == ["SIGCHLD", "SIGTERM"] and out.result == REMAINING
    assert "outlived" not in out.reason
    assert "stopped (state T): SIGTERM is pending and will end it when it is continued" in (
        out.reason
    )
    assert "--force sends SIGKILL" in out.reason and view.alive

    clock = FakeClock()
    view = FakeParent(clock, 3, stopped=True)
    out = ladder(view, clock, timeout=1.0, kill_parent=True, force=True).run()
    assert view.names() == ["SIGCHLD", "SIGTERM", "SIGKILL"] and out.result == REAPED


def test_ladder_stopped_parent_without_kill_parent_says_sigchld_is_pending() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 2, on_chld="all", stopped=True)
    out = ladder(view, clock, timeout=1.0).run()
    assert out.result == REMAINING and view.names() == ["SIGCHLD"]
    assert "SIGCHLD stays pending until it is continued (SIGCONT)" in out.reason


@pytest.mark.parametrize("kill_parent", [False, True])
def test_ladder_never_ends_a_namespace_init(kill_parent: bool) -> None:
    clock = FakeClock()
    view = FakeParent(clock, 3)
    why = safety.NAMESPACE_INIT
    out = ladder(
        view, clock, timeout=1.0, kill_parent=kill_parent, force=kill_parent, end_refused=why
    ).run()
    assert view.names() == ["SIGCHLD"] and view.alive
    assert out.result == ("refused" if kill_parent else REMAINING)
    assert why in out.reason and "docker run --init" in out.reason

    clock = FakeClock()  # the nudge is allowed, and may be all it takes
    view = FakeParent(clock, 3, on_chld="all")
    out = ladder(view, clock, kill_parent=True, force=True, end_refused=why).run()
    assert out.result == REAPED and view.names() == ["SIGCHLD"]


def test_ladder_no_zombies_sends_nothing() -> None:
    clock = FakeClock()
    view = FakeParent(clock, 0)
    out = ladder(view, clock).run()
    assert out.result == REAPED and view.sent == []


@pytest.fixture
def c_parent_opt(request: pytest.FixtureRequest):
    """lang -> the C parent's path for "c" (compiled once), None for "py"."""

    def pick(lang: str) -> Path | None:
        if lang == "py":
            return None
        return request.getfixturevalue("c_parent")

    return pick
