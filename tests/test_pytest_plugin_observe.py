"""The pytest plugin observes without changing: each inner project ends the same way
with the check off and in warn mode, test by test; and what outlives a test by design
(a forkserver, a reusable executor, a helper cached by a session fixture, a kept
process) is never a test's leak, in fail mode either.

Every inner project writes the pids it starts to $ZOMBIE_PIDS, so what a run leaves
(orphans adopted by this session, a subreaper) is cleared here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from proctools import GLOBAL_TIMEOUT, reap_adopted

from zombiectl.proc.table import descendants_of

NOTE = """
import os
from pathlib import Path

def note(name, *pids):
    with open(Path(os.environ["ZOMBIE_PIDS"]) / name, "a") as f:
        f.write(" ".join(map(str, pids)) + " ")
"""


@pytest.fixture
def pids_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "pids"
    d.mkdir()
    monkeypatch.setenv("ZOMBIE_PIDS", str(d))
    return d


def written(pids_dir: Path) -> dict[str, list[int]]:
    return {f.name: [int(x) for x in f.read_text().split()] for f in pids_dir.iterdir()}


def clear(pids_dir: Path) -> list[int]:
    """Kill and reap what the inner runs left (adopted by this session); return it."""
    wanted = {pid for group in written(pids_dir).values() for pid in group}
    left = [p.pid for p in descendants_of(os.getpid()) if p.pid in wanted]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap_adopted(pids=left)
    return left


def state_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", *args, timeout=2 * GLOBAL_TIMEOUT
    )


OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)


def outcomes(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(test, outcome) for each line of -v's report, in order (a teardown error is a
    second line for the same test)."""
    return OUTCOME.findall(result.stdout.str())


def off_and_warn(
    pytester: pytest.Pytester, pids_dir: Path, *args: str
) -> tuple[pytest.RunResult, pytest.RunResult]:
    """The project run with the check off, then in warn mode; both cleared after."""
    off = run(pytester, *args)
    clear(pids_dir)
    warn = run(pytester, "--zombies-warn", *args)
    clear(pids_dir)
    assert outcomes(off), off.stdout.str()
    assert outcomes(off) == outcomes(warn), warn.stdout.str()
    return off, warn


def flagged(result: pytest.RunResult) -> list[str]:
    """Who warn mode named: each "ZombieLeakWarning: WHO left" (a test id or a fixture)."""
    return re.findall(r"ZombieLeakWarning: (.+?) left \d+ process", result.stdout.str())


GATEWAY = (
    NOTE
    + r"""
import subprocess, sys
import pytest

ECHO = "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)"

class Group:
    # Like execnet's: gateways made on demand and cached for the whole session.
    def __init__(self):
        self.gateways = {}
    def make(self, spec):
        if spec not in self.gateways:
            p = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            note("gateway", p.pid)
            self.gateways[spec] = p
        return self.gateways[spec]
    def terminate(self):
        for p in self.gateways.values():
            p.stdin.close()
            p.wait(timeout=10)
            p.stdout.close()

@pytest.fixture(scope="session")
def group():
    g = Group()
    yield g
    g.terminate()

@pytest.fixture
def gw(group):
    return group.make("popen")

def ask(gw, text):
    gw.stdin.write(text + "\n")
    gw.stdin.flush()
    return gw.stdout.readline().strip()

def test_first(gw):
    assert ask(gw, "one") == "ONE"

def test_second(gw):
    assert ask(gw, "two") == "TWO"

def test_third(gw):
    assert gw.poll() is None
"""
)


def test_a_helper_cached_by_a_session_fixture_is_not_the_first_tests_leak(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makepyfile(test_gateway=GATEWAY)
    off, warn = off_and_warn(pytester, pids_dir)
    assert [o for _, o in outcomes(off)] == ["PASSED"] * 3
    assert flagged(warn) == []
    failed = run(pytester, "--zombies")
    assert clear(pids_dir) == []
    assert [o for _, o in outcomes(failed)] == ["PASSED"] * 3, failed.stdout.str()


GLOBAL_POOL = r"""
import multiprocessing

POOL = None

def pool():
    global POOL
    if POOL is None:
        POOL = multiprocessing.get_context("fork").Pool(2)
    return POOL

def test_first():
    assert pool().map(abs, [-1, -2]) == [1, 2]

def test_second():
    assert pool().map(abs, [-3]) == [3]
"""


def test_a_module_global_pool_is_reported_and_left_running(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makepyfile(test_pool=GLOBAL_POOL)
    _off, warn = off_and_warn(pytester, pids_dir)
    assert [o for _, o in outcomes(warn)] == ["PASSED", "PASSED"]
    assert flagged(warn) == ["test_pool.py::test_first"]


EXECUTOR = (
    NOTE
    + r"""
import concurrent.futures, multiprocessing, os

EXECUTOR = None

def executor():
    global EXECUTOR
    if EXECUTOR is None:
        EXECUTOR = concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("fork"))
    return EXECUTOR

def test_first():
    assert list(executor().map(abs, [-1, -2])) == [1, 2]
    note("workers", *executor()._processes)

def test_second():
    assert executor().submit(os.getpid).result() in executor()._processes
"""
)


def test_a_reusable_process_pool_executor_belongs_to_the_session(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makepyfile(test_executor=EXECUTOR)
    _off, warn = off_and_warn(pytester, pids_dir)
    assert flagged(warn) == []
    failed = run(pytester, "--zombies")
    workers = written(pids_dir)["workers"]
    clear(pids_dir)
    assert [o for _, o in outcomes(failed)] == ["PASSED", "PASSED"], failed.stdout.str()
    summary = failed.stdout.str().split("zombiectl: processes kept for the whole session")[1]
    for pid in workers[-2:]:
        assert re.search(rf"pid {pid} \(python\): worker of a concurrent process pool", summary)
    assert "first left after test_executor.py::test_first" in summary


FORKSERVER = r"""
import multiprocessing

def test_first():
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]

def test_second():
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        assert pool.map(abs, [-3, -4]) == [3, 4]
"""


def test_forkserver_pools_in_two_tests(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makepyfile(test_forkserver=FORKSERVER)
    off, warn = off_and_warn(pytester, pids_dir)
    assert [o for _, o in outcomes(off)] == ["PASSED", "PASSED"]
    assert flagged(warn) == []
    failed = run(pytester, "--zombies")
    assert [o for _, o in outcomes(failed)] == ["PASSED", "PASSED"], failed.stdout.str()
    out = failed.stdout.str()
    assert re.search(r"pid \d+ \(python\): multiprocessing forkserver; first left after", out)
    # Under pytest-xdist each worker's session-long processes reach the controller.
    spread = run(pytester, "--zombies", "-p", "xdist", "-n", "2")
    assert spread.ret == pytest.ExitCode.OK, spread.stdout.str()
    summary = spread.stdout.str().split("zombiectl: processes kept for the whole session")[1]
    assert re.search(r"\[gw[01]\] pid \d+ \(python\): multiprocessing forkserver", summary)


ALLOWED = (
    NOTE
    + r"""
import subprocess
import pytest

PROCS = []

@pytest.mark.zombies_allowed
def test_starts():
    PROCS.append(subprocess.Popen(["sleep", "60"]))
    note("sleep", PROCS[0].pid)

def test_polls_later():
    assert PROCS[0].poll() is None
    PROCS[0].terminate()
    assert PROCS[0].wait(timeout=10) == -15
"""
)


def test_an_exempt_tests_popen_keeps_its_true_status(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makepyfile(test_allowed=ALLOWED)
    off, _warn = off_and_warn(pytester, pids_dir)
    assert [o for _, o in outcomes(off)] == ["PASSED", "PASSED"]
    failed = run(pytester, "--zombies")
    clear(pids_dir)
    assert [o for _, o in outcomes(failed)] == ["PASSED", "PASSED"], failed.stdout.str()


KILLED_STATUS = r"""
import subprocess
import pytest

PROCS = []

def test_leaks():
    PROCS.append(subprocess.Popen(["sleep", "60"]))

def test_owner_reads_the_signal():
    assert PROCS[0].poll() == -9
"""


def test_fail_mode_leaves_the_owner_a_real_signal_status(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_killed=KILLED_STATUS)
    result = run(pytester, "--zombies")
    assert outcomes(result) == [
        ("test_killed.py::test_leaks", "PASSED"),
        ("test_killed.py::test_leaks", "ERROR"),
        ("test_killed.py::test_owner_reads_the_signal", "PASSED"),
    ], result.stdout.str()


ORPHAN_AND_WAIT = (
    NOTE
    + r"""
import os, subprocess, sys, time

ORPHAN = "import os, time\nif os.fork() == 0:\n    time.sleep({secs})\n    os._exit(0)\n"

def orphan(secs):
    # The middle process exits at once: its child is orphaned.
    subprocess.run([sys.executable, "-c", ORPHAN.format(secs=secs)], check=True)

def test_wait_sees_only_my_child():
    orphan(0.2)
    pid = os.fork()
    if pid == 0:
        time.sleep(0.8)
        os._exit(7)
    got, status = os.wait()
    assert (got, os.waitstatus_to_exitcode(status)) == (pid, 7)

def test_escapes():
    mid = subprocess.run([sys.executable, "-c",
        "import subprocess; print(subprocess.Popen(['sleep', '60'], stdout=-3, stderr=-3).pid)"],
        capture_output=True, text=True, check=True)
    note("escaped", int(mid.stdout))
"""
)


def test_without_the_subreaper_os_wait_sees_only_the_tests_children(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makeini("[pytest]\nzombies_subreaper = false\n")
    pytester.makepyfile(test_wait=ORPHAN_AND_WAIT)
    off, warn = off_and_warn(pytester, pids_dir)
    assert [o for _, o in outcomes(off)] == ["PASSED", "PASSED"]
    # Not a subreaper, the check still finds the orphan a test left running.
    escaped = written(pids_dir)["escaped"][-1]
    assert flagged(warn) == ["test_wait.py::test_escapes"]
    assert re.search(
        rf"pid {escaped} \(sleep\): still running.*\(escaped pytest\)", warn.stdout.str()
    )
    assert "not a subreaper: orphans found by a /proc scan" in warn.stdout.str()
    failed = run(pytester, "--zombies")
    escaped = written(pids_dir)["escaped"][-1]
    assert state_of(escaped) in ("Z", None)  # killed by the check
    clear(pids_dir)
    assert outcomes(failed)[-1] == ("test_wait.py::test_escapes", "ERROR")


def test_with_the_subreaper_os_wait_can_see_an_orphan(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    """What zombies_subreaper = true (the default) changes, as documented."""
    pytester.makepyfile(test_wait=ORPHAN_AND_WAIT)
    warn = run(pytester, "--zombies-warn", "-k", "wait_sees")
    clear(pids_dir)
    assert outcomes(warn) == [("test_wait.py::test_wait_sees_only_my_child", "FAILED")]


KEEP = (
    NOTE
    + r"""
import subprocess
import zombiectl.testing

PROCS = []

def test_keeps():
    PROCS.append(subprocess.Popen(["sleep", "60"]))
    zombiectl.testing.keep(PROCS[-1])
    note("kept", PROCS[-1].pid)

def test_fixture(zombiectl_session):
    PROCS.append(subprocess.Popen(["sleep", "61"]))
    zombiectl_session.keep(PROCS[-1].pid)
    note("kept", PROCS[-1].pid)

def test_ignored():
    PROCS.append(subprocess.Popen(["sleep", "62"]))
    note("kept", PROCS[-1].pid)

def test_still_running():
    assert [p.poll() for p in PROCS] == [None, None, None]
"""
)


def test_kept_and_ignored_processes_belong_to_the_session(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makeini("[pytest]\nzombies_ignore =\n    nothing*\n    sleep 62\n")
    pytester.makepyfile(test_keep=KEEP)
    result = run(pytester, "--zombies")
    kept = written(pids_dir)["kept"]
    left = clear(pids_dir)
    assert [o for _, o in outcomes(result)] == ["PASSED"] * 4, result.stdout.str()
    assert sorted(left) == sorted(kept)  # never signalled
    summary = result.stdout.str().split("zombiectl: processes kept for the whole session")[1]
    assert f"pid {kept[0]} (sleep): handed to the session (keep)" in summary
    assert f"pid {kept[1]} (sleep): handed to the session (keep)" in summary
    assert f"pid {kept[2]} (sleep): matches zombies_ignore pattern 'sleep 62'" in summary


TEARDOWN_IMPORTS = (
    NOTE
    + r"""
import os, subprocess, sys
import pytest

def test_leaks_a_process():
    subprocess.Popen(["sleep", "60"])

def test_leaks_a_zombie():
    if os.fork() == 0:
        os._exit(0)

def test_loaders():
    # What the check imports when it starts (the plugin module itself is loaded earlier).
    for name in ("zombiectl.testing.guard", "zombiectl.testing.tree", "zombiectl.proc.identity"):
        loader = type(sys.modules[name].__loader__).__name__
        note("rewritten", int(loader == "AssertionRewritingHook"))
"""
)

TEARDOWN_CONFTEST = r"""
import os, sys
from pathlib import Path
import pytest

NEW = []

def pytest_configure(config):
    # As for a plugin installed from a wheel: its whole package is marked for rewriting.
    config.pluginmanager.rewrite_hook.mark_rewrite("zombiectl")

@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = set(sys.modules)
    try:
        return (yield)
    finally:
        NEW.extend(m for m in set(sys.modules) - before if m.startswith("zombiectl"))

def pytest_sessionfinish(session):
    (Path(os.environ["ZOMBIE_PIDS"]) / "imported_in_tests").write_text(" ".join(NEW))
"""


def test_nothing_is_imported_or_rewritten_during_tests(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makeconftest(TEARDOWN_CONFTEST)
    pytester.makepyfile(test_imports=TEARDOWN_IMPORTS)
    result = run(pytester, "--zombies")
    imported = (pids_dir / "imported_in_tests").read_text()
    (pids_dir / "imported_in_tests").unlink()
    rewritten = written(pids_dir).get("rewritten", [])
    assert [o for _, o in outcomes(result)] == ["PASSED", "ERROR", "PASSED", "ERROR", "PASSED"]
    assert imported == ""
    assert rewritten == [0, 0, 0]


# A test that attacks the fork record the way a hostile test would: every non-blocking
# pipe pytest can write to is filled, or given garbage, and then a child is forked and
# never waited for. The leak is reported, never passed.
ATTACK = (
    NOTE
    + r"""
import os
import conftest

def writable_pipes():
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            flags = int(open(f"/proc/self/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue
        if target.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY and flags & os.O_NONBLOCK:
            yield fd

def leak(name, fork=os.fork):
    pid = fork()
    if pid == 0:
        os._exit(0)
    note(name, pid)

def test_fills_pipes():
    for fd in writable_pipes():
        try:
            for _ in range(1024):
                os.write(fd, b"x" * 4096)
        except BlockingIOError:
            pass
    leak("test_fills_pipes")

def test_writes_garbage():
    for fd in writable_pipes():
        try:
            os.write(fd, b"not a pid\n\xff\n")
        except OSError:
            pass
    leak("test_writes_garbage")

def test_forks_with_an_early_reference():
    leak("test_forks_with_an_early_reference", conftest.early_fork)

def test_runs_out_of_descriptors():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))  # no new descriptor at all
    try:
        pid = conftest.early_fork()
        if pid == 0:
            os._exit(0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    note("test_runs_out_of_descriptors", pid)
"""
)


def test_a_test_cannot_blind_the_fork_record(pytester: pytest.Pytester, pids_dir: Path) -> None:
    # A reference to os.fork taken before the session started: no wrapper around it.
    pytester.makeconftest("from os import fork as early_fork")
    pytester.makepyfile(test_attack=ATTACK)
    result = run(pytester, "--zombies")
    pids = written(pids_dir)
    assert clear(pids_dir) == []
    out = result.stdout.str()
    for name in (
        "test_fills_pipes",
        "test_writes_garbage",
        "test_forks_with_an_early_reference",
        "test_runs_out_of_descriptors",
    ):
        assert (f"test_attack.py::{name}", "ERROR") in outcomes(result), out
        assert re.search(rf"pid {pids[name][0]} \(python\): zombie", out), name
    assert "1 fork could not be recorded" in out
    assert "Traceback" not in out and "ValueError" not in out


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "60.5", "1e308", "abc", "\u0663", ""])
def test_a_bad_grace_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini(f"[pytest]\nzombies_grace = {value}\n")
    pytester.makepyfile("def test_x(): pass")
    result = run(pytester, "--zombies")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ini option zombies_grace = {value!r}: expected seconds from 0 to 60" in (
        result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str()


def test_the_grace_is_tunable(pytester: pytest.Pytester, pids_dir: Path) -> None:
    """A process that its owner's thread reaps 1 s after the test passes with a 3 s grace
    and is reported with none."""
    pytester.makepyfile(
        test_late=NOTE
        + """
import subprocess, threading, time

def test_late_reap():
    p = subprocess.Popen(["sleep", "1"])
    note("late", p.pid)
    threading.Thread(target=p.wait, daemon=True).start()
"""
    )
    pytester.makeini("[pytest]\nzombies_grace = 3\n")
    patient = run(pytester, "--zombies")
    clear(pids_dir)
    pytester.makeini("[pytest]\nzombies_grace = 0\n")
    hasty = run(pytester, "--zombies")
    clear(pids_dir)
    assert outcomes(patient) == [("test_late.py::test_late_reap", "PASSED")]
    assert "zombie leak check on (fail, 3 s grace)" in patient.stdout.str()
    assert outcomes(hasty)[-1] == ("test_late.py::test_late_reap", "ERROR")
    assert "0 s grace for exiting processes" in hasty.stdout.str()


def test_a_bad_subreaper_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nzombies_subreaper = maybe\n")
    pytester.makepyfile("def test_x(): pass")
    result = run(pytester, "--zombies")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option zombies_subreaper = 'maybe': expected true or false" in result.stderr.str()


def test_keep_takes_a_live_process_only() -> None:
    from zombiectl.testing import keep
    from zombiectl.testing.session import kept

    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(ProcessLookupError, match=f"no process {gone.pid}"):
        keep(gone)
    for bad in ("123", True, -1, 0, None):
        with pytest.raises(ValueError, match="takes a pid or a process object"):
            keep(bad)
    live = subprocess.Popen(["sleep", "60"])
    try:
        keep(live)
        assert [pid for pid, _ in kept() if pid == live.pid] == [live.pid]
    finally:
        live.kill()
        live.wait()
