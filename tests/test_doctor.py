"""`zombiectl doctor`: the probes, the verdicts, and the same doctor run under a reaping
init (`zombiectl run`) and under a parent that never reaps."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from proctools import (
    GLOBAL_TIMEOUT,
    read_line,
    terminate,
    unshare_works,
    wait_until,
    zombie_children,
)

from zombiectl.doctor import probes as doctor
from zombiectl.doctor.probes import Finding, OrphanProbe, Pid1, PidUsage, ZombiesNow
from zombiectl.proc.table import child_pids, children_of

Run = Callable[..., subprocess.CompletedProcess[str]]
DOCTOR = [sys.executable, "-m", "zombiectl", "doctor", "--json"]
PIDNS = str(Path(__file__).parent / "programs" / "pidns.py")

# A parent that never reaps anything but the one child it started: a child subreaper,
# so the doctor's orphan is adopted by it. Once the doctor is done it reaps everything
# left (the probe's orphan), so the test leaves nothing behind.
NEVER_REAPS = textwrap.dedent(
    """
    import ctypes, os, sys
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
    pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
    _, status = os.waitpid(pid, 0)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def finding(report: dict, check: str) -> dict:
    return next(f for f in report["findings"] if f["check"] == check)


# --------------------------------------------------------------------------- parsers


STATUS = "Name:\tx\nSigBlk:\t{blk}\nSigIgn:\t{ign}\nSigCgt:\t{cgt}\n"
CHLD = f"{1 << 16:016x}"
NONE = "0" * 16


@pytest.mark.parametrize(
    ("blk", "ign", "cgt", "expected"),
    [
        (NONE, NONE, CHLD, "caught"),
        (CHLD, NONE, NONE, "blocked"),
        (NONE, CHLD, NONE, "ignored"),
        (NONE, NONE, "00000000000004e8", "default"),
    ],
)
def test_sigchld_disposition(blk: str, ign: str, cgt: str, expected: str) -> None:
    assert doctor.sigchld_disposition(STATUS.format(blk=blk, ign=ign, cgt=cgt)) == expected


def test_sigchld_disposition_unreadable() -> None:
    assert doctor.sigchld_disposition("Name:\tx\n") is None


def test_hidepid_from_mountinfo() -> None:
    line = "23 1 0:21 / /proc rw,nosuid - proc proc rw,hidepid=invisible,gid=4\n"
    assert doctor.hidepid_of(line).value == "invisible"
    plain = "23 1 0:21 / /proc rw,relatime - proc proc rw\n"
    assert doctor.hidepid_of(plain).value == "0"
    assert doctor.hidepid_of("").value is None


def test_cgroup_pids_dirs_v1_and_v2() -> None:
    assert doctor.cgroup_pids_dirs("8:pids:/docker/abc\n1:cpu:/\n") == [
        "/sys/fs/cgroup/pids/docker/abc"
    ]
    assert doctor.cgroup_pids_dirs("0::/user.slice\n") == ["/sys/fs/cgroup/user.slice"]


# --------------------------------------------------------------------------- verdicts

PID1 = Pid1("init-x", "/sbin/init-x", "default", False)


def probe(reaped: bool, seconds: float | None, pid1: bool = True) -> OrphanProbe:
    adopter = 1 if pid1 else 4242
    return OrphanProbe(77, adopter, "init-x", pid1, reaped, seconds, 5.0)


def test_orphan_reaped_at_once_is_ok() -> None:
    f = doctor.orphan_finding(probe(True, 0.003), PID1)
    assert f.status == "ok" and "reaped after 3 ms" in f.summary and f.advice is None


def test_orphan_reaped_slowly_says_so() -> None:
    f = doctor.orphan_finding(probe(True, 1.8), PID1)
    assert f.status == "warn"
    assert "reaped after 1.8 s: PID 1 reaps, but slowly" in f.summary
    assert f.advice and "zombiectl run --" in f.advice


def test_orphan_never_reaped_by_pid1_is_bad_with_advice() -> None:
    f = doctor.orphan_finding(probe(False, 5.0), PID1)
    assert f.status == "bad"
    assert "PID 1 here does not reap" in f.summary and "orphan 77 stays a zombie" in f.summary
    assert f.advice and f.advice.startswith("PID 1 here does not reap: use `zombiectl run --`")


def test_orphan_never_reaped_by_a_subreaper_is_bad() -> None:
    f = doctor.orphan_finding(probe(False, 5.0, pid1=False), PID1)
    assert f.status == "bad" and "child subreaper" in f.summary


def usage(tasks: int, pid_max: int) -> PidUsage:
    return PidUsage(tasks, tasks, pid_max, None, None, None, False, None, None, None)


@pytest.mark.parametrize(
    ("tasks", "status"), [(10, "ok"), (600, "warn"), (900, "warn"), (901, "bad")]
)
def test_pid_usage_thresholds(tasks: int, status: str) -> None:
    assert doctor.pids_finding(usage(tasks, 1000), 0).status == status


def test_zombies_finding_names_the_leaker() -> None:
    f = doctor.zombies_finding(ZombiesNow(3, [{"pid": 9, "name": "leaky", "zombies": 3}]))
    assert f.status == "warn" and "leaky (9): 3" in f.summary
    assert f.advice and "`zombiectl reap --pid 9`" in f.advice
    assert doctor.zombies_finding(ZombiesNow(0)).status == "ok"


def test_an_init_that_leaks_is_not_advised_a_reap_that_would_refuse() -> None:
    parents = [
        {"pid": 1, "name": "app", "zombies": 5, "init": True},
        {"pid": 4321, "name": "node", "zombies": 4, "init": True},  # a container's init
        {"pid": 77, "name": "leaky", "zombies": 2, "init": False},
    ]
    advice = doctor.zombies_finding(ZombiesNow(11, parents)).advice or ""
    assert "`zombiectl reap --pid 77`" in advice
    assert "--pid 1`" not in advice and "--pid 1 " not in advice and "4321`" not in advice
    assert "app (PID 1 here), node (4321): each the init of a PID namespace" in advice
    for fix in ("docker run --init", "tini", "zombiectl run --"):
        assert fix in advice


def test_exit_code_is_1_only_for_a_bad_finding() -> None:
    report = doctor.diagnose(probe=False)
    findings = [Finding("a", "ok", "x"), Finding("b", "warn", "y"), Finding("c", "info", "z")]
    assert dataclasses.replace(report, findings=findings).exit_code() == 0
    bad = [*findings, Finding("d", "bad", "w")]
    assert dataclasses.replace(report, findings=bad).exit_code() == 1


@pytest.mark.root
def test_a_namespace_init_is_recognised(tmp_path: Path) -> None:
    if not unshare_works():
        pytest.skip("needs root and a working `unshare --pid --fork --mount-proc`")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, PIDNS, "init", "1"]
    proc = subprocess.Popen(
        [*argv, str(tmp_path / "log")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and read_line(proc.stdout).strip() == "ready"
        init = child_pids(proc.pid)[0]
        assert wait_until(lambda: len(zombie_children(init)) == 1)
        assert doctor.is_init(init) and doctor.is_init(1)
        assert not doctor.is_init(proc.pid) and not doctor.is_init(os.getpid())
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(GLOBAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        terminate(proc, signal.SIGKILL)  # closes the pipes; ends it only if still running


# --------------------------------------------------------------------------- the probe


def test_probe_in_a_subreaper_takes_its_own_orphan_back_and_reaps_it() -> None:
    # This test session is a child subreaper, so the orphan comes back to it.
    result = doctor.probe_orphan(timeout=5.0)
    assert result.adopter_pid == os.getpid()
    assert result.reaped
    assert result.orphan_pid not in {p.pid for p in children_of(os.getpid())}
    f = doctor.orphan_finding(result, PID1)
    assert f.status == "info" and "says nothing about this system" in f.summary


def doctor_under(parent: list[str], timeout: float, rc: int) -> tuple[int, dict]:
    """Run `doctor --json` as the child of parent argv; return the parent's pid and the report."""
    proc = subprocess.Popen(
        [*parent, *DOCTOR, "--timeout", str(timeout)], stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=GLOBAL_TIMEOUT)
    report = json.loads(out)
    assert proc.returncode == rc, [f for f in report["findings"] if f["status"] == "bad"]
    return proc.pid, report


def test_doctor_under_zombiectl_run_sees_a_prompt_reaper() -> None:
    parent, report = doctor_under([sys.executable, "-m", "zombiectl", "run", "--"], 20, 0)
    orphan = report["orphan_probe"]
    assert orphan["adopter_pid"] == parent  # zombiectl run adopted it
    assert not orphan["adopter_is_pid1"]
    assert orphan["reaped"] is True
    assert finding(report, "orphans")["status"] == "ok"


def test_doctor_under_a_subreaper_that_never_reaps() -> None:
    parent, report = doctor_under([sys.executable, "-c", NEVER_REAPS], 1, 1)
    orphan = report["orphan_probe"]
    assert orphan["adopter_pid"] == parent
    assert orphan["reaped"] is False
    f = finding(report, "orphans")
    assert f["status"] == "bad" and "not reaped within 1 s" in f["summary"]
    assert "zombiectl run --" in f["advice"]


@pytest.mark.root
def test_verdicts_differ_between_a_non_reaping_pid1_and_zombiectl_run() -> None:
    """In a new PID namespace whose PID 1 never reaps (and holds 3 zombies), then with
    `zombiectl run` as PID 1: exit 1 and exit 0, so `HEALTHCHECK CMD zombiectl doctor`
    tells them apart."""
    if not unshare_works():
        pytest.skip("needs root and a working `unshare --pid --fork --mount-proc`")
    pid1_never_reaps = [sys.executable, PIDNS, "run", "3"]
    reports = {}
    for name, pid1, rc in (
        ("never-reaps", pid1_never_reaps, 1),
        ("zombiectl-run", [sys.executable, "-m", "zombiectl", "run", "--"], 0),
    ):
        result = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", *pid1, *DOCTOR, "--timeout", "1"],
            capture_output=True,
            text=True,
            timeout=GLOBAL_TIMEOUT,
        )
        assert result.returncode == rc, (result.stdout, result.stderr)
        reports[name] = json.loads(result.stdout)

    bad, good = reports["never-reaps"], reports["zombiectl-run"]
    for report in (bad, good):
        assert report["orphan_probe"]["adopter_pid"] == 1
        assert report["container"]["pid_namespace"] == "child"
    assert bad["orphan_probe"]["reaped"] is False
    assert finding(bad, "orphans")["status"] == "bad"
    assert "PID 1 here does not reap" in finding(bad, "orphans")["summary"]
    assert finding(bad, "pid1")["status"] == "bad"
    assert good["orphan_probe"]["reaped"] is True
    assert finding(good, "orphans")["status"] == "ok"
    assert good["pid1"]["sigchld"] == "sigwait"  # zombiectl run waits in sigwaitinfo
    assert [f["check"] for f in bad["findings"] if f["status"] == "bad"] == ["orphans", "pid1"]
    assert not [f for f in good["findings"] if f["status"] == "bad"]
    # The leaker is PID 1 itself: the advice is a new init, never `reap --pid 1`.
    assert bad["zombies"]["parents"] == [{"pid": 1, "name": "python", "zombies": 3, "init": True}]
    advice = finding(bad, "zombies")["advice"]
    assert "reap --pid" not in advice and "docker run --init" in advice
    assert "zombiectl run --" in advice


def test_text_output_and_help(zombiectl: Run) -> None:
    # Under this test session (a subreaper that reaps only between tests) the orphan
    # is not reaped within the bound; the session reaps it afterwards.
    result = zombiectl("doctor", "--timeout", "0.2")
    assert result.returncode == 1  # the orphan was not reaped in time: bad
    assert result.stdout.startswith("CHECK")
    for check in ("orphans", "pid1", "container", "pidfd", "proc", "ptrace", "pids", "zombies"):
        assert f"\n{check} " in result.stdout
    assert "Advice" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("bad: orphans")
    assert "\x1b[" not in result.stdout  # plain text when piped
    help_text = zombiectl("doctor", "--help").stdout
    assert "zombiectl doctor --json" in help_text


def test_bad_timeout_is_usage_error(zombiectl: Run) -> None:
    result = zombiectl("doctor", "--timeout", "0")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_text_rendering_takes_names_as_data() -> None:
    import io

    from rich.console import Console

    from zombiectl.doctor.render import render

    report = doctor.diagnose(probe=False)
    hostile = "[/]\x1b[2J[bold red]x"
    findings = [
        Finding("zombies", "warn", f"1 zombie(s) now; biggest leakers: {hostile} (9): 1", hostile),
        Finding("pids", "bad", "99% of pids"),
    ]
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(
        render(dataclasses.replace(report, findings=findings))
    )
    text = out.getvalue()
    assert "\x1b" not in text and text.count("[/]\\x1b[2J[bold red]x") == 2
    assert text.rstrip().splitlines()[-1] == "bad: pids (exit 1)"
