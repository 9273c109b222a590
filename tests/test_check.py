"""`zombiectl check` against programs this project did not write: forking echo servers in C
and Python (leaky, fixed, one wait per SIGCHLD, crashing, double-forking, never
listening), a script that leaves zombies, and a running process (--pid). Counts are
compared with `ps`; the JSON is parsed and the JUnit file read back with junitparser.
Both observation modes run: kernel events (root) and sampling (forced by the env switch).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from proctools import GLOBAL_TIMEOUT, build_c, reap_adopted, wait_until
from proctools import read_until as lines_until

from zombiectl.check.verdict import Facts, Limits, grade, percentile
from zombiectl.proc import events as pev
from zombiectl.proc.table import ProcInfo, children_of, descendants_of, read_proc
from zombiectl.supervise.tree import Tree

PROGRAMS = Path(__file__).parent / "programs"
EVENTS = pev.available()
MODES = [
    pytest.param(
        "events", marks=pytest.mark.skipif(not EVENTS, reason="process events refused here")
    ),
    "sampled",
]


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    env.pop("ZOMBIECTL_CHECK_SAMPLED", None)
    if mode == "sampled":
        env["ZOMBIECTL_CHECK_SAMPLED"] = "1"
    return env


def check(
    *args: str, mode: str = "events", timeout: float = GLOBAL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zombiectl", "check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(mode if EVENTS else "sampled"),
        stdin=subprocess.DEVNULL,
    )


def check_json(*args: str, mode: str = "events") -> tuple[dict, subprocess.CompletedProcess[str]]:
    res = check("--json", *args, mode=mode)
    assert res.stdout.count("\n") == 1, res.stdout + res.stderr
    return json.loads(res.stdout), res


def start_check(*args: str, mode: str = "events") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "check", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(mode if EVENTS else "sampled"),
    )


def read_until(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """stderr lines of a running check up to the first that holds `needle`."""
    assert proc.stderr is not None
    return lines_until(proc.stderr, lambda line: needle in line)


def started_pid(lines: list[str]) -> int:
    for line in lines:
        if " as pid " in line:
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError(lines)


def ps_zombies_of(ppid: int) -> int:
    """Zombie children of ppid as `ps` counts them."""
    out = subprocess.run(
        ["ps", "-e", "-o", "ppid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    return sum(
        1 for line in out.splitlines() if line.split()[0] == str(ppid) and line.split()[1][0] == "Z"
    )


def junit_cases(path: Path) -> dict[str, TestCase]:
    """The testcases of the one `zombiectl check` suite, read back with junitparser."""
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    assert [s.name for s in suites] == ["zombiectl check"]
    return {case.name: case for case in suites[0]}


@pytest.fixture(scope="module")
def c_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("cserver"), PROGRAMS / "forking_echo.c")


def server_cmd(impl: str, c_server: Path | None, port: int, mode: str) -> list[str]:
    if impl == "c":
        assert c_server is not None
        return [str(c_server), str(port), mode]
    return [sys.executable, str(PROGRAMS / "forking_echo.py"), str(port), mode]


def _taking_sigchld(pid: int) -> bool:
    """pid has a SIGCHLD pending, or is running (in its handler), per /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    bit = 1 << (signal.SIGCHLD - 1)
    pending = any(int(fields[k], 16) & bit for k in ("SigPnd", "ShdPnd"))
    return pending or fields["State"].split()[0] != "S"


def handlers_settled(server: int) -> bool:
    """Every child of server has exited and the server has taken every SIGCHLD they
    sent: none is pending and it sleeps (in accept), out of its handler. No client is
    left to make a child, so its zombie count holds from here on."""
    kids = children_of(server)
    if any(not k.is_zombie for k in kids) or _taking_sigchld(server):
        return False
    return len(kids) == ps_zombies_of(server)


@pytest.fixture
def nothing_left() -> Iterator[None]:
    yield
    reap_adopted()
    assert descendants_of(os.getpid()) == []


# --------------------------------------------------------------------------- pure parts


def test_parse_fork_exec_exit_events() -> None:
    head = pev._EVENT_HEAD
    fork = head.pack(pev.PROC_EVENT_FORK, 0, 2_000_000_000) + pev._FORK.pack(10, 10, 11, 11)
    thread = head.pack(pev.PROC_EVENT_FORK, 0, 0) + pev._FORK.pack(10, 10, 12, 11)
    exit_ = head.pack(pev.PROC_EVENT_EXIT, 0, 3_000_000_000) + pev._EXIT.pack(11, 11, 256, 17)
    exit_ += pev._EXIT_PARENT.pack(10, 10)
    assert pev.parse_event(fork) == pev.Event("fork", 11, 10, 2.0)
    assert pev.parse_event(thread) is None  # a thread, not a process
    assert pev.parse_event(exit_) == pev.Event("exit", 11, 10, 3.0, 256)
    assert pev.parse_event(b"\0" * 4) is None
    sid = head.pack(pev.PROC_EVENT_SID, 0, 1_000_000_000) + pev._SID.pack(11, 11)
    assert pev.parse_event(sid) == pev.Event("sid", 11, 0, 1.0)


def test_parse_datagram_walks_netlink_messages() -> None:
    body = pev._EVENT_HEAD.pack(pev.PROC_EVENT_EXEC, 0, 0) + pev._EXEC.pack(7, 7)
    cn = pev._CN_MSG.pack(pev.CN_IDX_PROC, pev.CN_VAL_PROC, 0, 0, len(body), 0) + body
    msg = pev._NLMSGHDR.pack(16 + len(cn), pev.NLMSG_DONE, 0, 0, 0) + cn
    msg += b"\0" * (-len(msg) % 4)
    assert pev.parse_datagram(msg * 2) == [pev.Event("exec", 7, 0, 0.0)] * 2
    assert pev.parse_datagram(msg[:10]) == []


def test_listen_message_layout() -> None:
    msg = pev.listen_message()
    length, kind = pev._NLMSGHDR.unpack_from(msg)[:2]
    assert length == len(msg) == 16 + 20 + 4 and kind == pev.NLMSG_DONE
    assert pev._CN_MSG.unpack_from(msg, 16)[:2] == (pev.CN_IDX_PROC, pev.CN_VAL_PROC)


def test_tree_counts_zombies_lifetimes_and_collectors() -> None:
    t = Tree(root=100, me=1, now=0.0)
    assert t.fork(101, 100, 0.1) and t.fork(102, 100, 0.1) and t.fork(103, 102, 0.2)
    assert not t.fork(999, 500, 0.2)  # not forked by the tree
    assert t.fork(104, 1, 0.2)  # forked with zombiectl as parent (CLONE_PARENT)
    t.exit(101, 1.0, ppid=100)
    t.exit(103, 1.5)
    assert t.max_zombies == 0  # an exit alone is not a zombie
    m101, m103 = t.members[101], t.members[103]
    t.looked(m101, 1.001, zombie=True)
    t.looked(m103, 1.501, zombie=True)
    assert t.max_zombies == 2
    t.looked(m101, 1.25, zombie=True)
    t.looked(m101, 1.26, zombie=False)  # its parent reaped it
    t.gone(103, 2.5, by_me=True)
    assert sorted(t.lifetimes()) == [pytest.approx(0.25), pytest.approx(1.0)]
    assert t.orphans_adopted() == 1 and t.children_started() == 4
    assert 101 not in t.members and 103 not in t.members  # gone: folded into the totals
    assert [m.pid for m in t.zombies()] == [] and t.max_zombies == 2
    assert t.collected(by_me=False) == 1 and t.collected(by_me=True) == 1


def test_exit_never_seen_as_zombie_is_not_one() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.fork(101, 100, 0.0)
    t.exit(101, 1.0, ppid=100)
    t.looked(t.members[101], 1.001, zombie=False)  # SIG_IGN: gone before the first look
    assert t.max_zombies == 0 and t.lifetimes() == [] and t.collected(by_me=False) == 1


def test_tree_sample_sees_zombie_and_keeps_its_parent() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.seen([ProcInfo(100, 1, "S", "srv"), ProcInfo(101, 100, "S", "h")], 0.1, complete=True)
    t.seen([ProcInfo(100, 1, "S", "srv"), ProcInfo(101, 100, "Z", "h")], 0.2, complete=True)
    t.seen([ProcInfo(101, 1, "Z", "h")], 0.3, complete=True)  # re-parented to zombiectl
    assert [(m.pid, m.ppid) for m in t.zombies()] == [(101, 100)]
    t.seen([], 0.4, complete=True)
    assert t.lifetimes() == [pytest.approx(0.1)]  # exit to the last look that showed Z


def test_what_dies_in_the_teardown_is_the_checks() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.fork(101, 100, 0.0)
    t.fork(102, 101, 0.0)
    t.begin_ending()
    t.exit(101, 1.0, ppid=100)
    t.looked(t.members[101], 1.001, zombie=True)
    t.adopt(102)  # re-parented when the teardown killed 101
    assert t.max_zombies == 0 and t.orphans_adopted() == 0 and t.ended_by_check() == 2


def test_age_counts_only_while_the_parent_lived() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.fork(101, 100, 0.0)
    t.fork(102, 101, 0.0)
    t.exit(102, 1.0, ppid=101)
    t.looked(t.members[102], 1.001, zombie=True)
    t.exit(101, 1.2, ppid=100)  # the parent exits: the zombie waits for zombiectl now
    t.gone(102, 5.0, by_me=True)
    assert t.oldest_under_parent(6.0) == pytest.approx(0.2)
    assert t.not_reaped_by_parent() == 0  # its parent exited on its own (a double fork)


def test_a_zombie_its_parent_held_until_the_teardown_was_not_reaped_by_it() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.fork(101, 100, 0.0)
    t.exit(101, 1.0, ppid=100)
    t.looked(t.members[101], 1.001, zombie=True)
    t.begin_ending()
    t.exit(100, 2.0)  # the check ended the server holding it
    t.gone(101, 2.1, by_me=True)
    assert t.not_reaped_by_parent() == 1 and t.collected(by_me=True) == 1


def test_zombie_looks_are_fast_then_back_off() -> None:
    t = Tree(root=100, me=1, now=0.0)
    t.fork(101, 100, 0.0)
    t.exit(101, 10.0)
    m = t.members[101]
    assert m.next_poll == pytest.approx(10.001)
    t.looked(m, 10.02, zombie=True)
    assert m.next_poll == pytest.approx(10.021)
    t.looked(m, 15.0, zombie=True)
    assert m.next_poll == pytest.approx(15.5)
    t.looked(m, 1000.0, zombie=True)
    assert m.next_poll == pytest.approx(1001.0)


def test_verdict_names_each_failed_criterion() -> None:
    facts = Facts(
        ["srv"],
        5,
        "run",
        134,
        1.0,
        None,
        zombies_at_end=3,
        tcp=True,
        listened=True,
        clients=10,
        echoes_ok=7,
        echoes_failed=3,
        failures={"refused (connection reset)": 3},
        crashed_by=signal.SIGABRT,
        oldest_zombie_ms=2500.0,
    )
    report = grade(facts, Limits(max_zombies=1, max_zombie_age=2.0))
    failed = [c.name for c in report.criteria if c.failed]
    assert failed == ["zombies at end", "zombie age", "replies", "process"]
    assert report.verdict == "fail" and "SIGABRT" in report.reasons[-1]
    ok = grade(Facts(["x"], 5, "run", 3, 1.0, None), Limits())
    assert ok.verdict == "pass"  # a non-zero exit is reported, not graded...
    strict = grade(Facts(["x"], 5, "run", 3, 1.0, None), Limits(require_exit_zero=True))
    assert strict.reasons == ["the command exited with status 3"]  # ...unless asked


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0


# --------------------------------------------------------------------------- servers


@pytest.mark.needs_cc
@pytest.mark.parametrize("mode", MODES)
def test_leaky_c_server_fails_with_every_handler_a_zombie(
    c_server: Path, mode: str, tmp_path: Path, nothing_left: None
) -> None:
    port = free_port()
    junit = tmp_path / "zombies.xml"
    proc = start_check(
        "--tcp",
        str(port),
        "--clients",
        "30",
        "--settle",
        "3",
        "--junit-xml",
        str(junit),
        "--",
        *server_cmd("c", c_server, port, "leak"),
        mode=mode,
    )
    try:
        lines = read_until(proc, "settling")
        server = started_pid(lines)
        assert wait_until(lambda: handlers_settled(server))
        seen_by_ps = ps_zombies_of(server)  # while the check settles, before it ends CMD
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    report = json.loads(out)
    assert seen_by_ps == 30
    assert report["zombies_at_end"] == 30 and report["max_zombies"] == 30
    assert report["children"] == 30 and report["echoes_ok"] == 30
    assert report["verdict"] == "fail" and "after 30 connections" in report["reasons"][0]
    assert report["leakers"] == [
        {"pid": server, "name": "forking_echo", "cmdline": f"{c_server} {port} leak", "zombies": 30}
    ]
    assert report["exit_status"] == 128 + signal.SIGTERM  # ended by the check, not a crash
    assert report["resolution_ms"] == (None if mode == "events" else 100.0)
    cases = junit_cases(junit)
    assert set(cases) == {
        "zombies at end",
        "reaped by parent",
        "zombie age",
        "replies",
        "listening",
        "process",
    }
    assert isinstance(cases["zombies at end"].result[0], Failure)
    assert "30 zombie(s)" in cases["zombies at end"].result[0].message
    assert cases["replies"].is_passed and cases["listening"].is_passed
    assert isinstance(cases["zombie age"].result[0], Skipped)


@pytest.mark.needs_cc
@pytest.mark.parametrize("mode", MODES)
def test_fixed_c_server_passes(c_server: Path, mode: str, nothing_left: None) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "40",
        "--concurrency",
        "8",
        "--settle",
        "1",
        "--",
        *server_cmd("c", c_server, port, "fixed"),
        mode=mode,
    )
    assert res.returncode == 0, res.stderr
    assert report["verdict"] == "pass" and report["reasons"] == []
    assert report["zombies_at_end"] == 0 and report["echoes_ok"] == 40
    if mode == "events":  # every handler is seen; a sampler may miss short-lived ones
        assert report["children"] == 40
        life = report["zombie_lifetime_ms"]
        # Lifetimes are those of the handlers seen in state Z at all (most are reaped
        # within a millisecond); every one was collected by the server itself.
        assert life["p50"] is None or life["p50"] <= life["p90"] <= life["max"]
        assert report["collected_by_parent"] == 40


@pytest.mark.needs_cc
def test_one_wait_per_sigchld_matches_ps(c_server: Path, nothing_left: None) -> None:
    """Coalesced SIGCHLDs leave some handlers unreaped: whatever the count, ps agrees."""
    port = free_port()
    proc = start_check(
        "--tcp",
        str(port),
        "--clients",
        "60",
        "--concurrency",
        "20",
        "--settle",
        "3",
        "--",
        *server_cmd("c", c_server, port, "once"),
    )
    try:
        server = started_pid(read_until(proc, "settling"))
        # The clients are done, but handlers may still be exiting: ps is read once every
        # handler has exited and the server has taken its SIGCHLDs (the count holds still).
        assert wait_until(lambda: handlers_settled(server))
        seen_by_ps = ps_zombies_of(server)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out)
    assert report["zombies_at_end"] == seen_by_ps
    assert report["max_zombies"] >= report["zombies_at_end"]
    assert report["echoes_ok"] == 60
    # The default --max-zombies 0: the verdict follows the count ps saw.
    assert proc.returncode == (1 if seen_by_ps else 0), err
    assert report["verdict"] == ("fail" if seen_by_ps else "pass")
    if seen_by_ps:
        assert f"holds {seen_by_ps} zombie(s) at the end" in report["reasons"][0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["leak", "fixed"])
def test_python_servers(kind: str, mode: str, nothing_left: None) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "12",
        "--settle",
        "1",
        "--",
        *server_cmd("py", None, port, kind),
        mode=mode,
    )
    assert report["echoes_ok"] == 12
    if kind == "leak":
        assert res.returncode == 1 and report["zombies_at_end"] == 12
        assert report["leakers"][0]["zombies"] == 12
    else:
        assert res.returncode == 0 and report["zombies_at_end"] == 0, res.stderr


def test_server_that_never_listens_fails_after_ready_timeout(
    tmp_path: Path, nothing_left: None
) -> None:
    port = free_port()
    junit = tmp_path / "j.xml"
    report, res = check_json(
        "--tcp",
        str(port),
        "--ready-timeout",
        "0.5",
        "--junit-xml",
        str(junit),
        "--",
        *server_cmd("py", None, port, "never-listen"),
    )
    assert res.returncode == 1
    assert report["reasons"] == ["the server never listened on the port"]
    assert report["clients"] == 0 and report["exit_status"] == 128 + signal.SIGTERM
    cases = junit_cases(junit)
    assert isinstance(cases["listening"].result[0], Failure)


def test_server_that_crashes_fails_as_crashed(nothing_left: None) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "10",
        "--concurrency",
        "1",
        "--",
        *server_cmd("py", None, port, "crash"),
    )
    assert res.returncode == 1
    assert report["exit_status"] == 128 + signal.SIGABRT
    assert any("crashed: killed by SIGABRT" in r for r in report["reasons"])
    assert report["echoes_ok"] == 3 and report["echoes_failed"] == 7


@pytest.mark.parametrize("mode", MODES)
def test_double_forking_server_hands_its_handlers_to_zombiectl(
    mode: str, nothing_left: None
) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "10",
        "--concurrency",
        "2",
        "--settle",
        "1",
        "--",
        *server_cmd("py", None, port, "double-fork"),
        mode=mode,
    )
    assert res.returncode == 0, res.stderr
    assert report["zombies_at_end"] == 0 and report["echoes_ok"] == 10
    assert report["orphans_adopted"] == 10  # every handler, re-parented to zombiectl
    if mode == "events":
        assert report["children"] == 20  # the intermediates and the handlers
        assert report["collected_by_zombiectl"] == 10 and report["collected_by_parent"] == 10


# --------------------------------------------------------------------------- programs


@pytest.mark.parametrize("mode", MODES)
def test_script_that_exits_holding_zombies(mode: str, tmp_path: Path, nothing_left: None) -> None:
    script = tmp_path / "leaves_zombies.sh"
    shutil.copy(PROGRAMS / "leaves_zombies.sh", script)
    script.chmod(0o755)
    report, res = check_json("--", str(script), mode=mode)
    assert res.returncode == 1
    assert report["zombies_at_end"] == 3 and report["exit_status"] == 0
    assert report["orphans_adopted"] == 3  # adopted already dead when sleep exited
    assert report["leakers"][0]["name"] == "sleep" and report["leakers"][0]["zombies"] == 3
    plain = check("--max-zombies", "3", "--", str(script), mode=mode)
    assert plain.returncode == 0 and "verdict: pass" in plain.stdout


@pytest.mark.parametrize("mode", MODES)
def test_pid_mode_counts_zombies_before_and_ends_nothing(
    zombie_parent: Callable[..., object], mode: str
) -> None:
    parent = zombie_parent(4, alive=1)
    pid = parent.pid  # type: ignore[attr-defined]
    report, res = check_json("--pid", str(pid), "--duration", "0.3", mode=mode)
    assert res.returncode == 1
    assert report["zombies_before"] == 4 and report["zombies_at_end"] == 4
    assert report["exit_status"] is None and report["children"] == 0
    assert report["mode"] == "pid"
    info = read_proc(pid)
    assert info is not None and not info.is_zombie  # nothing was ended
    assert ps_zombies_of(pid) == 4
    plain = check("--pid", str(pid), "--duration", "0.1", mode="sampled")
    assert "nothing was adopted, signalled or ended" in plain.stdout


def test_pid_that_does_not_exist_is_exit_3() -> None:
    res = check("--pid", "4194305", "--duration", "1")
    assert res.returncode == 3 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--clients", "-1", "--", "true"],
        ["--settle", "nan", "--", "true"],
        ["--sample", "0", "--", "true"],
        ["--tcp", "70000", "--", "true"],
        ["--pid", "1"],  # --pid needs --duration or --tcp
        [],
        ["--pid", "1", "--duration", "1", "--", "true"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str]) -> None:
    res = check(*args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("cmd", "code"), [("no-such-command-zombiectl", 127), ("not-executable", 126)]
)
def test_cmd_that_cannot_start_still_writes_json_and_junit(
    cmd: str, code: int, tmp_path: Path
) -> None:
    if cmd == "not-executable":
        path = tmp_path / "server.sh"
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o644)
        cmd = str(path)
    junit = tmp_path / "j.xml"
    report, res = check_json("--junit-xml", str(junit), "--", cmd)
    assert res.returncode == code
    assert report["verdict"] == "error" and report["exit_status"] == code
    cases = junit_cases(junit)
    assert isinstance(cases["process"].result[0], Error)
    assert cases["process"].result[0].type == "process"
    assert all(isinstance(cases[name].result[0], Skipped) for name in cases if name != "process")


def test_junit_path_through_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link.xml"
    link.symlink_to(target)
    res = check("--junit-xml", str(link), "--", "true")
    assert res.returncode == 2 and target.read_text() == "keep"


# --------------------------------------------------------------------------- endings


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_check_cleans_up_and_reports(sig: int, code: int, nothing_left: None) -> None:
    port = free_port()
    proc = start_check(
        "--tcp",
        str(port),
        "--clients",
        "5",
        "--settle",
        "60",
        "--",
        *server_cmd("py", None, port, "leak"),
    )
    try:
        server = started_pid(read_until(proc, "settling"))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert json.loads(out)["interrupted"] is True
    assert read_proc(server) is None


def test_sigkill_of_zombiectl_leaves_nothing_of_the_tree(nothing_left: None) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zombiectl",
            "check",
            "--",
            sys.executable,
            str(PROGRAMS / "daemonizes.py"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env("events"),
    )
    try:
        lines = read_until(proc, "daemon ")
        daemon = int(lines[-1].split()[1])
        assert read_proc(daemon) is not None
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The guard ends every member (CMD and the daemon); what is left comes to this
    # session (a subreaper) and is reaped here.
    assert wait_until(
        lambda: reap_adopted(timeout=0.1) is not None and not descendants_of(os.getpid())
    )
    assert read_proc(daemon) is None


def test_check_ends_escaped_daemons_when_it_ends(nothing_left: None) -> None:
    report, res = check_json(
        "--duration", "1", "--", sys.executable, str(PROGRAMS / "daemonizes.py")
    )
    assert res.returncode == 0, res.stderr
    assert report["orphans_adopted"] == 1  # the daemon, re-parented to zombiectl


@pytest.mark.needs_cc
def test_guide_student_server_fails_as_shown(tmp_path: Path, nothing_left: None) -> None:
    """The instructors' section of docs/check.md: its leaky C server, compiled as printed,
    fails the check."""
    guide = (Path(__file__).parent.parent / "docs" / "check.md").read_text()
    section = guide[guide.index("## For instructors") :]
    source = section.split("```c\n", 1)[1].split("```", 1)[0]
    (tmp_path / "echo_server.c").write_text(source)
    exe = tmp_path / "echo_server"
    subprocess.run(
        ["gcc", "-w", "-o", str(exe), str(tmp_path / "echo_server.c")],
        check=True,
        capture_output=True,
    )
    port = free_port()
    report, res = check_json(
        "--tcp", str(port), "--clients", "10", "--settle", "0.5", "--", str(exe), str(port)
    )
    assert res.returncode == 1 and report["zombies_at_end"] == 10 and report["echoes_ok"] == 10
    assert "--junit-xml" in section and "zombies at the end    100" in section


@pytest.mark.parametrize(
    ("family", "bind", "host", "found"),
    [
        (socket.AF_INET, "127.0.0.1", "127.0.0.1", True),
        (socket.AF_INET, "0.0.0.0", "127.0.0.1", True),
        (socket.AF_INET6, "::", "127.0.0.1", True),  # dual stack
        (socket.AF_INET6, "::1", "::1", True),
        (socket.AF_INET, "127.0.0.2", "127.0.0.1", False),
        (socket.AF_INET, "127.0.0.1", "localhost", True),
    ],
)
def test_listening_socket_is_found_by_inode(family: int, bind: str, host: str, found: bool) -> None:
    from zombiectl.check.listening import listening_pid

    with socket.socket(family) as s:
        s.bind((bind, 0))
        port = s.getsockname()[1]
        assert listening_pid([os.getpid()], host, port) is None  # bound, not listening yet
        s.listen()
        assert (listening_pid([os.getpid()], host, port) == os.getpid()) is found


def test_pid_mode_drives_a_running_server_and_leaves_it_running(nothing_left: None) -> None:
    port = free_port()
    server = subprocess.Popen(server_cmd("py", None, port, "leak"), stdin=subprocess.DEVNULL)
    try:
        report, res = check_json("--pid", str(server.pid), "--tcp", str(port), "--clients", "5")
        assert res.returncode == 1, res.stderr
        assert report["zombies_at_end"] == 5 == ps_zombies_of(server.pid)
        assert report["exit_status"] is None and server.poll() is None
    finally:
        server.kill()
        server.wait()


SILENT_SERVER = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    held.append(s.accept()[0])  # accepts, never replies, never closes
"""


@pytest.mark.parametrize(("expect", "code", "ok"), [("echo", 1, 0), ("any", 1, 0), ("none", 0, 3)])
def test_expectations_against_a_server_that_never_replies(
    expect: str, code: int, ok: int, nothing_left: None
) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "3",
        "--client-timeout",
        "0.3",
        "--expect",
        expect,
        "--settle",
        "0",
        "--",
        sys.executable,
        "-c",
        SILENT_SERVER,
        str(port),
    )
    assert res.returncode == code, res.stderr
    assert report["echoes_ok"] == ok and report["echoes_failed"] == 3 - ok
    if ok == 0:
        assert report["reasons"] == ["3 of 3 replies failed (3 timed out)"]


def test_payload_template_is_echoed(nothing_left: None) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "4",
        "--payload",
        "ping {n}\n",
        "--settle",
        "0",
        "--max-zombies",
        "4",  # with no settle time, a handler may still be on its way out: not graded here
        "--",
        *server_cmd("py", None, port, "fixed"),
    )
    assert res.returncode == 0 and report["echoes_ok"] == 4, res.stderr
    assert report["echoes_failed"] == 0


def test_interrupted_check_is_not_a_pass(nothing_left: None) -> None:
    proc = start_check("--", "sleep", "100")
    try:
        read_until(proc, "as pid")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out)
    assert proc.returncode == 130
    assert report["verdict"] == "fail"
    assert report["reasons"] == ["the check was interrupted by SIGINT before it finished"]


def test_unwritable_junit_path_is_refused_before_the_check(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    res = check("--junit-xml", str(tmp_path / "no" / "j.xml"), "--", "touch", str(marker))
    assert res.returncode == 2 and not marker.exists()
    assert res.stderr.count("\n") == 1


def test_payload_that_is_not_utf8_is_sent_as_its_bytes(nothing_left: None) -> None:
    # A shell passes arguments as bytes: \xff reaches Python as the surrogate \udcff.
    port = free_port()
    report, res = check_json(
        "--tcp",
        str(port),
        "--clients",
        "2",
        "--payload",
        "\udcff{n}\n",
        "--settle",
        "0",
        "--max-zombies",
        "2",
        "--",
        *server_cmd("py", None, port, "fixed"),
    )
    assert res.returncode == 0 and report["echoes_ok"] == 2, res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_junit_path_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    # Its owner could rewrite the verdict after the check wrote it: never write there.
    foreign = tmp_path / "foreign.xml"
    foreign.write_text("theirs")
    os.chown(foreign, 65534, 65534)
    res = check("--junit-xml", str(foreign), "--", "true")
    assert res.returncode == 4, res.stderr
    assert res.stderr.count("\n") == 1 and "another user" in res.stderr
    assert foreign.read_text() == "theirs"


def test_junit_path_with_a_second_hard_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    os.link(target, tmp_path / "link.xml")
    res = check("--junit-xml", str(tmp_path / "link.xml"), "--", "true")
    assert res.returncode == 4, res.stderr
    assert target.read_text() == "keep"


# A child leaves CMD's group with setsid() and forks nothing after it: a member in a
# session of its own, which the guard must still end (it follows members, not groups).
_SETSID_ONLY = r"""
import os, signal, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.write(w, f"{os.getpid()}\n".encode())
    while True:
        time.sleep(60)
sys.stderr.write("session " + os.read(r, 64).decode())
sys.stderr.flush()
while True:
    time.sleep(60)
"""


def _idle(pid: int) -> bool:
    """Every thread of pid is asleep: whatever woke it has been handled."""
    tasks = Path(f"/proc/{pid}/task")
    return all(
        (t / "stat").read_text().rsplit(")", 1)[1].split()[0] == "S" for t in tasks.iterdir()
    )


@pytest.mark.skipif(not EVENTS, reason="the sid event needs the process events connector")
def test_sigkill_right_after_setsid_leaves_nothing(nothing_left: None) -> None:
    proc = start_check("--", sys.executable, "-c", _SETSID_ONLY)
    try:
        session = int(read_until(proc, "session ")[-1].split()[1])
        assert read_proc(session) is not None
        # The setsid() woke zombiectl before the line was written; once it sleeps
        # again, it has handled that event.
        assert wait_until(lambda: _idle(proc.pid), 10)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_until(
        lambda: reap_adopted(timeout=0.1) is not None and not descendants_of(os.getpid()), 10
    )
    assert read_proc(session) is None


# Stage 1 holds a zombie until zombiectl has seen it, then execs stage 2, which leaks two
# more: the same pid, another program. A shell that execs the real server does this.
_EXECS_AFTER_A_ZOMBIE = r"""
import os, sys, time
def idle(pid):
    tasks = f"/proc/{pid}/task"
    return all(open(f"{tasks}/{t}/stat").read().rsplit(")", 1)[1].split()[0] == "S"
               for t in os.listdir(tasks))
def state(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
if sys.argv[1] == "o" + "ne":
    kid = os.fork()
    if kid == 0:
        os._exit(0)
    while state(kid) != "Z":
        time.sleep(0.01)
    while not idle(os.getppid()):  # zombiectl was woken by the exit; it has looked
        time.sleep(0.01)
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], "t" + "wo", sys.argv[2]])
for _ in range(2):
    if os.fork() == 0:
        os._exit(0)
while True:
    time.sleep(60)
"""


def test_leaker_is_named_as_it_is_after_an_exec(nothing_left: None) -> None:
    prog = _EXECS_AFTER_A_ZOMBIE
    report, res = check_json("--duration", "1.5", "--", sys.executable, "-c", prog, "one", prog)
    assert res.returncode == 1, res.stderr
    [leaker] = report["leakers"]
    assert leaker["zombies"] == 3
    assert " two " in leaker["cmdline"] and " one " not in leaker["cmdline"]


def test_members_that_are_gone_are_counted_and_forgotten() -> None:
    t = Tree(root=100, me=1, now=0.0)
    for i in range(10_000):
        pid = 1000 + i
        t.fork(pid, 100, float(i))
        t.exit(pid, i + 0.5, ppid=100)
        t.looked(t.members[pid], i + 0.501, zombie=True)
        t.looked(t.members[pid], i + 0.6, zombie=False)
    assert len(t.members) == 1  # the root: memory follows the living, not the forked
    assert t.children_started() == 10_000 and t.collected(by_me=False) == 10_000
    assert len(t.lifetimes()) == 10_000 and t.slowest_parent_reap() == pytest.approx(0.001)
