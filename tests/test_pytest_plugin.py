"""The pytest plugin, run for real: fresh projects under pytester, in separate processes.

Each leaking test of the inner project writes the pids it leaves to a file, so the
report can be checked pid by pid, and so that whatever an inner run without the check
leaves behind (adopted by this session, a subreaper) is cleared here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from proctools import GLOBAL_TIMEOUT, read_line, reap_adopted

from zombiectl.proc.table import descendants_of
from zombiectl.testing.guard import Ledger, Owner
from zombiectl.testing.tree import collect, read_tree

# Every way of leaking the plugin must catch, and two ways of cleaning up it must not blame.
LEAKS = r"""
import multiprocessing, os, subprocess, sys, time
from pathlib import Path
import pytest

PIDS = Path(os.environ["ZOMBIE_PIDS"])
POOLS = []

def note(name, *pids):
    (PIDS / name).write_text(" ".join(map(str, pids)))

def my_children():
    me = os.getpid()
    out = []
    for tid in os.listdir(f"/proc/{me}/task"):
        out += Path(f"/proc/{me}/task/{tid}/children").read_text().split()
    return out

def test_popen():
    note("test_popen", subprocess.Popen(["sleep", "60"]).pid)

def test_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    note("test_fork", pid)

def test_pool():
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map(abs, [1, 2])
    POOLS.append(pool)   # still referenced: its handler thread would replace a dead worker
    note("test_pool", *(w.pid for w in pool._pool))

def test_pool_clean_after():
    assert my_children() == []

def test_daemon():
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=time.sleep, args=(60,), daemon=True)
    p.start()
    note("test_daemon", p.pid)

@pytest.fixture
def cleaned():
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()

def test_cleaned_in_teardown(cleaned):
    note("test_cleaned_in_teardown", cleaned.pid)

@pytest.fixture(scope="session")
def server():
    p = subprocess.Popen(["sleep", "61"])
    note("server", p.pid)
    yield p

def test_uses_server(server):
    pass

def test_uses_server_too(server):
    pass

@pytest.mark.zombies_allowed
def test_allowed():
    note("test_allowed", subprocess.Popen(["sleep", "60"]).pid)

def test_orphan_running():
    # The middle process exits at once (and is waited): the grandchild is orphaned.
    mid = subprocess.Popen([sys.executable, "-c",
        "import subprocess; print(subprocess.Popen(['sleep', '60']).pid)"],
        stdout=subprocess.PIPE, text=True)
    grandchild = int(mid.stdout.readline())
    mid.wait()
    mid.stdout.close()
    note("test_orphan_running", grandchild)

@pytest.fixture(scope="module")
def zombie_holder():
    # A parent with a zombie child; the test below kills and waits for the parent.
    p = subprocess.Popen([sys.executable, "-c",
        "import os, sys\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    zombie = int(p.stdout.readline())
    while open(f"/proc/{zombie}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.005)
    yield p, zombie

def test_orphaned_zombie(zombie_holder):
    p, zombie = zombie_holder
    note("test_orphaned_zombie", zombie)
    p.kill()
    p.wait()
    p.stdin.close()
    p.stdout.close()

def test_orphan_exits():
    # Like `zombiectl doctor`'s probe: a grandchild orphaned, adopted by pytest, then
    # exiting within the test. pytest did not start it: reaped, blamed on no one.
    mid = subprocess.Popen([sys.executable, "-c",
        "import os, sys\npid = os.fork()\nif pid == 0:\n    sys.stdin.read()\n    os._exit(0)\nprint(pid, flush=True)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    grandchild = int(mid.stdout.readline())
    mid.wait()
    mid.stdout.close()
    mid.stdin.close()  # the grandchild reads EOF and exits
    while open(f"/proc/{grandchild}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.005)
    note("test_orphan_exits", grandchild)

def test_plain():
    subprocess.run(["true"], check=True)
"""

LEAKING = {
    "test_popen": "still running",
    "test_fork": "zombie",
    "test_pool": "still running",
    "test_daemon": "still running",
    "test_orphan_running": "still running",
}
CLEAN = [
    "test_cleaned_in_teardown",
    "test_plain",
    "test_allowed",
    "test_orphaned_zombie",
    "test_orphan_exits",
]


@pytest.fixture
def pids_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "pids"
    d.mkdir()
    monkeypatch.setenv("ZOMBIE_PIDS", str(d))
    return d


def written_pids(pids_dir: Path) -> dict[str, list[int]]:
    return {f.name: [int(x) for x in f.read_text().split()] for f in pids_dir.iterdir()}


def mine(pids: dict[str, list[int]]) -> list[int]:
    """The written pids that are still this session's descendants (so left by the run)."""
    wanted = {pid for group in pids.values() for pid in group}
    return [p.pid for p in descendants_of(os.getpid()) if p.pid in wanted]


def clear(pids: dict[str, list[int]]) -> None:
    """Kill and reap what an inner run left; they are orphans adopted by this session."""
    left = mine(pids)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap_adopted(pids=left)


def split_by(pattern: str, output: str) -> dict[str, str]:
    """{heading: text up to the next heading} for each match of pattern's one group."""
    parts = re.split(pattern, output, flags=re.M)[1:]
    return dict(zip(parts[0::2], parts[1::2], strict=True))


def teardown_errors(output: str) -> dict[str, str]:
    """The text of each 'ERROR at teardown of NAME' section, by test name."""
    return split_by(r"^_+ ERROR at teardown of (\S+) _+$", output)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *args, timeout=2 * GLOBAL_TIMEOUT
    )


def check_pids_named(pids: dict[str, list[int]], text_of: dict[str, str]) -> None:
    for test, state in LEAKING.items():
        body = text_of[test]
        for pid in pids[test]:
            assert re.search(rf"pid {pid} \([^)]*\): {state}", body), (test, pid, body)


def test_fail_mode_blames_each_leaking_test(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = run(pytester, "--zombies")
    pids = written_pids(pids_dir)
    left = mine(pids)
    clear(pids)
    # Only the exempt test's process outlives the run: nothing signals it.
    assert left == pids["test_allowed"]
    errors = teardown_errors(result.stdout.str())
    # The session fixture is blamed in the teardown of the last test (the session's end).
    assert set(errors) == {*LEAKING, "test_plain"}
    check_pids_named(pids, errors)
    assert "session-scoped fixture 'server'" in errors["test_plain"]
    assert f"pid {pids['server'][0]} (sleep): still running" in errors["test_plain"]
    for test in CLEAN:
        for pid in pids.get(test, []):
            assert f"pid {pid} " not in result.stdout.str()
    assert len(pids["test_pool"]) == 2
    result.assert_outcomes(passed=len(LEAKING) + len(CLEAN) + 3, errors=len(LEAKING) + 1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_warn_mode_warns_with_the_same_text(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = run(pytester, "--zombies-warn", "-W", "always::pytest.PytestWarning")
    pids = written_pids(pids_dir)
    left = mine(pids)
    clear(pids)
    # Nothing signalled: what ran at the end of the run still runs (the pool and the
    # daemon process are ended by multiprocessing itself as the run exits).
    running = ("test_popen", "test_orphan_running", "server", "test_allowed")
    assert {pid for name in running for pid in pids[name]} <= set(left)
    # As without the check: the pool's workers are still there when the next test looks.
    result.assert_outcomes(passed=len(LEAKING) + len(CLEAN) + 2, failed=1)
    assert "FAILED test_leaks.py::test_pool_clean_after" in result.stdout.str()
    out = result.stdout.str()
    warned = {
        nodeid.rsplit("::", 1)[1]: text
        for nodeid, text in split_by(r"ZombieLeakWarning: (\S+) left", out).items()
    }
    assert set(warned) == set(LEAKING)
    check_pids_named(pids, warned)
    assert "session-scoped fixture 'server' left 1 process behind" in out


def test_off_without_flag_changes_nothing(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makepyfile(
        test_leaks=LEAKS,
        test_inactive="""
        import sys
        from zombiectl.proc.prctl import is_child_subreaper

        def test_untouched(request):
            assert request.config.pluginmanager.get_plugin("zombiectl-leak-guard") is None
            assert "zombiectl.testing.guard" not in sys.modules
            assert not is_child_subreaper()
        """,
    )
    result = run(pytester)
    pids = written_pids(pids_dir)
    # Nothing checked, nothing collected: the leaks outlive the run (and are cleared here).
    assert set(pids["test_popen"]) <= set(mine(pids))
    clear(pids)
    assert "leak check" not in result.stdout.str()
    # Without the check, the pool's workers are still there when the next test looks.
    assert "FAILED test_leaks.py::test_pool_clean_after" in result.stdout.str()
    result.assert_outcomes(passed=len(LEAKING) + len(CLEAN) + 3, failed=1)


def test_xdist_workers_each_guard_themselves(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = run(pytester, "--zombies", "-p", "xdist", "-n", "2")
    pids = written_pids(pids_dir)
    left = mine(pids)
    clear(pids)
    assert left == pids["test_allowed"]
    assert "zombie leak check on (fail, 0.5 s grace) in each xdist worker" in result.stdout.str()
    errors = teardown_errors(result.stdout.str())
    assert set(LEAKING) <= set(errors)
    check_pids_named(pids, errors)
    # The session fixture is torn down on each worker that used it, at that worker's end.
    assert "session-scoped fixture 'server'" in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_ini_sets_the_mode_and_a_flag_wins(pytester: pytest.Pytester, pids_dir: Path) -> None:
    pytester.makeini("[pytest]\nzombies = warn\n")
    pytester.makepyfile(
        test_one="""
        import os, subprocess
        from pathlib import Path

        def test_popen():
            p = subprocess.Popen(["sleep", "60"])
            (Path(os.environ["ZOMBIE_PIDS"]) / "test_popen").write_text(str(p.pid))
        """
    )
    warned = run(pytester)
    clear(written_pids(pids_dir))  # warn mode leaves the process running
    failed = run(pytester, "--zombies")
    pids = written_pids(pids_dir)
    clear(pids)
    assert warned.ret == pytest.ExitCode.OK
    assert "ZombieLeakWarning: test_one.py::test_popen left 1 process" in warned.stdout.str()
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.assert_outcomes(passed=1, errors=1)


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        ("zombies = sometimes", [], "ini option zombies = 'sometimes': expected fail, warn or off"),
        ("", ["--zombies", "--zombies-warn"], "--zombies and --zombies-warn: give one of them"),
    ],
)
def test_bad_mode_is_a_usage_error(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(): pass")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_zombies_flag_does_not_swallow_a_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass", test_b="def test_b(): pass")
    result = run(pytester, "--zombies", "test_a.py")
    result.assert_outcomes(passed=1)


def test_without_proc_the_check_is_off_with_one_warning(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makeconftest(
        """
        import zombiectl.testing.pytest_plugin as plugin

        plugin.have_proc = lambda: False  # as on a platform without /proc
        """
    )
    pytester.makepyfile(
        test_one="""
        import os, subprocess
        from pathlib import Path

        def test_popen():
            p = subprocess.Popen(["sleep", "60"])
            (Path(os.environ["ZOMBIE_PIDS"]) / "test_popen").write_text(str(p.pid))
        """
    )
    result = run(pytester, "--zombies")
    pids = written_pids(pids_dir)
    left = mine(pids)
    clear(pids)
    assert left == pids["test_popen"]
    assert result.ret == pytest.ExitCode.OK
    assert result.stdout.str().count("zombie leak check disabled: this platform has no /proc") == 1


# --------------------------------------------------------------------------- the ledger


PARENT_OF_POOL = """
import multiprocessing, sys, time
pool = multiprocessing.get_context("fork").Pool(2)
pool.map(abs, [1, 2])
print(" ".join(str(w.pid) for w in pool._pool), flush=True)
time.sleep(600)
"""


def test_collect_frees_a_pool_whose_parent_side_is_alive() -> None:
    """Parent and workers frozen before any dies: no worker is replaced, nothing is left."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_OF_POOL], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers = [int(x) for x in read_line(parent.stdout).split()]
        me = os.getpid()
        family = [p for p in read_tree(me) if p.pid in {parent.pid, *workers}]
        assert len(family) == 3
        left = collect({family[0].key}, me)
        assert left == []
        assert [p for p in read_tree(me) if p.ppid in {parent.pid, *workers}] == []
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout:
            parent.stdout.close()


def test_a_reused_pid_is_never_blamed_or_killed() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        ledger = Ledger(grace=0)
        now = next(p for p in read_tree(ledger.me) if p.pid == proc.pid)
        test, other = Owner("test", "t::a"), Owner("test", "t::b")
        # What an earlier process with the same pid would have left in the ledger.
        ledger.owner_of = {(now.pid, now.starttime - 1): test}
        ledger.parent_of = {(now.pid, now.starttime - 1): now.ppid}
        assert ledger.check(test, other) is None
        assert proc.poll() is None
        assert ledger.owner_of[now.key] == other
    finally:
        proc.kill()
        proc.wait()


def test_a_process_reaped_by_its_owner_within_the_grace_period_is_not_blamed() -> None:
    """The shipped grace, 0.5 s as the plugin's report says: a process that is still
    running when its test ends, exits 0.1 s later and is reaped by its owner (a thread
    in Popen.wait) is not blamed. With no grace it would be."""
    test = Owner("test", "t::a")
    ledger = Ledger()
    assert ledger.grace == 0.5
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.read(); time.sleep(0.1)"],
        stdin=subprocess.PIPE,
    )
    waiter = threading.Thread(target=proc.wait)
    try:
        ledger.claim(test)
        assert proc.stdin is not None
        proc.stdin.close()  # it exits now, and its owner (the thread) reaps it
        waiter.start()
        assert ledger.check(test, test) is None
    finally:
        if proc.poll() is None:
            proc.kill()
        if waiter.is_alive():
            waiter.join()
        proc.wait()


def test_a_leak_names_pid_name_state_parent_and_cmdline() -> None:
    test = Owner("test", "t::a")
    ledger = Ledger()
    proc = subprocess.Popen(["sleep", "60"])
    try:
        leak = ledger.check(test, test)
    finally:
        proc.kill()
        proc.wait()
    assert leak is not None
    text = leak.text(ledger.grace)
    assert text.startswith("t::a left 1 process behind (checked after teardown, 0.5 s grace")
    assert f"pid {proc.pid} (sleep): still running, state S, parent {os.getpid()} (" in text
    assert text.splitlines()[1].endswith("cmdline: sleep 60")


def test_a_class_fixture_is_blamed_when_its_class_is_done(
    pytester: pytest.Pytester, pids_dir: Path
) -> None:
    pytester.makepyfile(
        test_cls="""
        import os, subprocess
        from pathlib import Path
        import pytest

        @pytest.fixture(scope="class")
        def worker():
            p = subprocess.Popen(["sleep", "60"])
            (Path(os.environ["ZOMBIE_PIDS"]) / "worker").write_text(str(p.pid))
            return p

        class TestWithWorker:
            def test_one(self, worker):
                assert worker.poll() is None

            def test_two(self, worker):
                assert worker.poll() is None

        def test_after():
            pass
        """
    )
    result = run(pytester, "--zombies")
    pids = written_pids(pids_dir)
    left = mine(pids)
    clear(pids)
    assert left == []
    errors = teardown_errors(result.stdout.str())
    assert list(errors) == ["TestWithWorker.test_two"]
    assert (
        errors["TestWithWorker.test_two"]
        .lstrip()
        .startswith("class-scoped fixture 'worker' left 1 process behind")
    )
    assert f"pid {pids['worker'][0]} (sleep): still running" in errors["TestWithWorker.test_two"]
    result.assert_outcomes(passed=3, errors=1)
