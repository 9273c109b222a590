"""`zombiectl run`: its own options and errors (the tini comparison is test_run_vs_tini.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from proctools import GLOBAL_TIMEOUT, read_line, reap_adopted, signals_held, wait_until
from test_run_vs_tini import RECORD, LineReader, stop

from zombiectl.errors import NotSupported
from zombiectl.fastpath import parse_run
from zombiectl.init import reaper as initd
from zombiectl.proc.table import read_proc

Run = Callable[..., subprocess.CompletedProcess[str]]

# CMD: starts a child that ignores SIGTERM and one that does not, prints their pids, exits 7.
LEAVES_TWO = (
    "import os, signal, sys\n"
    "pids = []\n"
    "for ignore in (True, False):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        null = os.open(os.devnull, os.O_WRONLY)\n"
    "        os.dup2(null, 1)\n"
    "        os.dup2(null, 2)\n"
    "        if ignore:\n"
    "            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "        signal.pause()\n"
    "        os._exit(0)\n"
    "    pids.append(pid)\n"
    "print(*pids, flush=True)\n"
    "os._exit(7)\n"
)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--", "true"], {"cmd": ("true",), "group": False, "kill_descendants": False}),
        (["true", "--group"], {"cmd": ("true", "--group"), "group": False}),
        (["--group", "-v", "--", "a", "b"], {"cmd": ("a", "b"), "group": True, "verbose": True}),
        (["--kill-descendants", "--grace", "2.5", "x"], {"kill_descendants": True, "grace": 2.5}),
        (["--wait-descendants", "--grace=0", "--", "x"], {"wait_descendants": True, "grace": 0.0}),
        (["--", "--help"], {"cmd": ("--help",)}),
    ],
)
def test_fast_parser_accepts_well_formed_lines(args: list[str], expected: dict) -> None:
    opts = parse_run(args)
    assert opts is not None
    for key, value in expected.items():
        assert opts[key] == value


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--"],
        ["--help"],
        ["-h"],
        ["--bogus", "--", "true"],
        ["--grace", "-1", "--", "true"],
        ["--grace", "nan", "true"],
        ["--grace"],
        ["--kill-descendants", "--wait-descendants", "--", "true"],
    ],
)
def test_fast_parser_leaves_help_and_errors_to_click(args: list[str]) -> None:
    assert parse_run(args) is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "Missing argument"),
        (["--bogus", "--", "true"], "No such option"),
        (["--grace", "-1", "--", "true"], "--grace"),
        (["--grace", "inf", "--", "true"], "finite"),
        (["--kill-descendants", "--wait-descendants", "--", "true"], "cannot be used together"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(zombiectl: Run, args: list[str], needle: str) -> None:
    result = zombiectl("run", *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_click_path_runs_cmd_too(zombiectl: Run) -> None:
    # `-vv` is not in the fast parser's vocabulary, so click parses it, then runs CMD.
    result = zombiectl("run", "-vv", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    assert "exited with status 3" in result.stderr


def test_help_has_an_example(zombiectl: Run) -> None:
    result = zombiectl("run", "--help")
    assert result.returncode == 0
    assert "zombiectl run -- " in result.stdout
    assert "--kill-descendants" in result.stdout


# --------------------------------------------------------------------------- errors


def test_command_not_found_is_127_with_one_line(zombiectl: Run) -> None:
    result = zombiectl("run", "--", "no-such-command-zombiectl")
    assert result.returncode == 127
    assert result.stderr == "zombiectl: error: no-such-command-zombiectl: command not found\n"


def test_empty_command_is_not_found() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zombiectl", "run", "--", ""], capture_output=True, text=True
    )
    assert result.returncode == 127
    assert result.stderr == "zombiectl: error: '': command not found\n"


def test_not_executable_is_126(zombiectl: Run, tmp_path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = zombiectl("run", "--", str(script))
    assert result.returncode == 126
    assert "cannot run: Permission denied" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_path_search_finds_a_later_entry(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    prog = bin_dir / "say-hello"
    prog.write_text("#!/bin/sh\necho hello\n")
    prog.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}/missing:{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "zombiectl", "run", "--", "say-hello"],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
        env=env,
    )
    assert result.returncode == 0
    assert result.stdout == "hello\n"


def test_not_linux_is_exit_5_unless_pid_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(initd.sys, "platform", "darwin")
    with pytest.raises(NotSupported) as err:
        initd.run(["true"])
    assert err.value.exit_code == 5


def test_fast_path_imports_neither_click_nor_rich_nor_psutil() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "zombiectl", "run", "--", "true"],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "zombiectl.init.reaper" in imported
    for heavy in ("click", "rich", "psutil", "subprocess"):
        assert heavy not in imported


# --------------------------------------------------------------------------- behaviour


def test_verbose_logs_each_reap(zombiectl: Run) -> None:
    result = zombiectl("run", "--verbose", "--", "sh", "-c", "sh -c 'exit 4' & wait; exit 3")
    assert result.returncode == 3
    assert "exited with status 3" in result.stderr
    # The inner sh is a child of the outer one, reaped by it: no orphan reaped here.
    result = zombiectl(
        "run", "--verbose", "--wait-descendants", "--", "sh", "-c", "(sh -c 'exit 4' &); exit 0"
    )
    assert result.returncode == 0
    assert "reaped orphan" in result.stderr and "which exited with status 4" in result.stderr


def test_default_leaves_live_descendants_to_the_next_reaper(zombiectl: Run) -> None:
    result = zombiectl("run", "--", sys.executable, "-c", LEAVES_TWO, timeout=GLOBAL_TIMEOUT)
    pids = [int(p) for p in result.stdout.split()]
    try:
        assert result.returncode == 7
        # This session is a subreaper: the two are its children now, still alive.
        for pid in pids:
            info = read_proc(pid)
            assert info is not None and info.ppid == os.getpid()
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_adopted(pids=pids)


def test_kill_descendants_terms_then_kills_after_grace(zombiectl: Run) -> None:
    result = zombiectl(
        "run", "--verbose", "--kill-descendants", "--grace", "0.3", "--",
        sys.executable, "-c", LEAVES_TWO,
    )  # fmt: skip
    assert result.returncode == 7
    assert "sending SIGTERM to 2 descendant(s)" in result.stderr
    assert "killed by SIGTERM" in result.stderr
    assert "sending SIGKILL to 1 descendant(s)" in result.stderr
    assert "killed by SIGKILL" in result.stderr
    for pid in (int(p) for p in result.stdout.split()):
        assert read_proc(pid) is None


def test_wait_descendants_waits_for_them(zombiectl: Run, tmp_path) -> None:
    flag = tmp_path / "done"
    cmd = f"(sleep 0.3; touch {flag}) & exit 5"
    result = zombiectl("run", "--wait-descendants", "--", "sh", "-c", cmd)
    assert result.returncode == 5
    assert flag.exists()  # run returned only after the orphan finished


def test_wait_descendants_forwards_signals_to_what_is_left() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "run", "-v", "--wait-descendants", "--",
         "sh", "-c", "sleep 300 & echo $!; exit 0"],
        stdout=subprocess.PIPE, text=True, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        sleeper = int(read_line(proc.stdout))
        # CMD has exited; the sleeper is zombiectl's own child now.
        assert wait_until(lambda: (read_proc(sleeper) or (0, 0))[1] == proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(GLOBAL_TIMEOUT) == 0, proc.stderr
        assert read_proc(sleeper) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_signal_sent_during_start_up_is_not_lost() -> None:
    """A SIGTERM that arrives while CMD is starting is held, then forwarded."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "run", "--", "sleep", "300"],
        stdout=subprocess.DEVNULL,
    )
    try:
        # Once zombiectl holds its signals, a SIGTERM is forwarded, never fatal to it.
        assert wait_until(lambda: signals_held(proc.pid), interval=0.001)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(GLOBAL_TIMEOUT) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_many_short_lived_children_never_hang(zombiectl: Run) -> None:
    """Bursts of exits coalesce into few SIGCHLDs; the drain must still catch them all."""
    script = (
        "import os\n"
        "for _ in range(20):\n"
        "    for _ in range(25):\n"
        "        if os.fork() == 0:\n"
        "            if os.fork() == 0:\n"
        "                os._exit(0)\n"
        "            os._exit(0)\n"
        "    while True:\n"
        "        try:\n"
        "            os.wait()\n"
        "        except ChildProcessError:\n"
        "            break\n"
    )
    started = time.monotonic()
    result = zombiectl("run", "--verbose", "--wait-descendants", "--", sys.executable, "-c", script)
    assert result.returncode == 0
    assert result.stderr.count("reaped orphan") == 500
    assert time.monotonic() - started < 60


def test_a_sigpipe_raised_by_its_own_write_is_not_forwarded() -> None:
    """With --verbose and stderr a closed pipe, each "forwarding" line makes the kernel
    raise SIGPIPE in zombiectl itself (si_code SI_USER, its own pid): that one is
    zombiectl's, and CMD must not receive it."""
    r, w = os.pipe()
    os.close(r)  # every write to stderr now fails with EPIPE and raises SIGPIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "run", "--verbose", "--", *RECORD],
        stdout=subprocess.PIPE,
        stderr=w,
    )
    os.close(w)
    try:
        out = LineReader(proc)
        cmd_pid = out.line().split()[1]
        # Each forwarded signal is logged first, so a self-raised SIGPIPE is pending
        # before the next signal is even sent; SIGPIPE (13) sorts before SIGTERM (15).
        lines = []
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
            os.kill(proc.pid, sig)
            lines.append(out.line())
        assert proc.wait(GLOBAL_TIMEOUT) == 0
        assert lines == [f"{s} {cmd_pid}" for s in ("SIGUSR1", "SIGUSR2", "SIGTERM")]
    finally:
        stop(proc)
