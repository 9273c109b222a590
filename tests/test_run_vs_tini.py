"""The same scenarios under `tini -s --` and under `zombiectl run --`, with the same
expected results: exit status passthrough, death by a signal, signal forwarding (to CMD,
or to its process group), and a thousand orphans that exit at once all reaped.

Each scenario is parametrised over both inits; tini's case is skipped (with the reason)
only where the `tini` binary is missing (`.ci/run` installs the Debian package).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"
RECORD = [sys.executable, str(PROGRAMS / "record_signals.py")]
ORPHANS = [sys.executable, str(PROGRAMS / "orphan_burst.py")]


def init_command(name: str, group: bool = False) -> list[str]:
    if name == "tini":
        tini = shutil.which("tini")
        if tini is None:
            pytest.skip("tini is not installed (Debian package `tini`; .ci/run installs it)")
        return [tini, "-s", *(["-g"] if group else []), "--"]
    return [sys.executable, "-m", "zombiectl", "run", *(["--group"] if group else []), "--"]


INITS = ["tini", "zombiectl"]


def run_under(init: str, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*init_command(init), *cmd], capture_output=True, text=True, timeout=timeout
    )


class LineReader:
    """Lines from a child's stdout, with a deadline on each (never a bare blocking read)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def line(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no line within {timeout} s (have {self.buf!r})")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise AssertionError(f"EOF before a full line (have {self.buf!r})")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    if proc.stdout:
        proc.stdout.close()


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("code", [0, 3, 42])
def test_exit_status_passes_through(init: str, code: int) -> None:
    assert run_under(init, ["sh", "-c", f"exit {code}"]).returncode == code


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_cmd_killed_by_a_signal_gives_128_plus_n(init: str, sig: signal.Signals) -> None:
    result = run_under(init, ["sh", "-c", f"kill -{sig.name[3:]} $$"])
    assert result.returncode == 128 + sig


@pytest.mark.parametrize("init", INITS)
def test_missing_command_exits_127(init: str) -> None:
    assert run_under(init, ["no-such-command-zombiectl"]).returncode == 127


@pytest.mark.parametrize("init", INITS)
def test_signals_are_forwarded_to_cmd(init: str) -> None:
    proc = subprocess.Popen([*init_command(init), *RECORD], stdout=subprocess.PIPE)
    try:
        out = LineReader(proc)
        ready, cmd_pid = out.line().split()
        assert ready == "ready"
        seen = []
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGINT, signal.SIGUSR2, signal.SIGTERM):
            os.kill(proc.pid, sig)
            seen.append(out.line())
        assert seen == [
            f"{s} {cmd_pid}" for s in ("SIGHUP", "SIGUSR1", "SIGINT", "SIGUSR2", "SIGTERM")
        ]
        assert proc.wait(30) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", INITS)
def test_group_signals_reach_cmds_whole_process_group(init: str) -> None:
    proc = subprocess.Popen(
        [*init_command(init, group=True), *RECORD, "--fork"], stdout=subprocess.PIPE
    )
    try:
        out = LineReader(proc)
        pids = {out.line().split()[1], out.line().split()[1]}
        assert len(pids) == 2
        os.kill(proc.pid, signal.SIGUSR1)
        assert {out.line(), out.line()} == {f"SIGUSR1 {p}" for p in pids}
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", INITS)
def test_signal_to_cmd_alone_without_group(init: str) -> None:
    proc = subprocess.Popen([*init_command(init), *RECORD, "--fork"], stdout=subprocess.PIPE)
    try:
        out = LineReader(proc)
        child_pid = out.line().split()[1]
        cmd_pid = out.line().split()[1]
        os.kill(proc.pid, signal.SIGUSR1)
        assert out.line() == f"SIGUSR1 {cmd_pid}"
        os.kill(int(child_pid), signal.SIGTERM)  # the helper ends; CMD is left
        assert out.line() == f"SIGTERM {child_pid}"
        os.kill(proc.pid, signal.SIGTERM)
        assert out.line() == f"SIGTERM {cmd_pid}"
        assert proc.wait(30) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", INITS)
def test_a_thousand_orphans_exiting_at_once_are_all_reaped(init: str) -> None:
    result = run_under(init, [*ORPHANS, "1000", "30"], timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["adopted"] == 1000, report  # the init was the subreaper that adopted them
    assert report["left"] == 0 and report["zombies"] == 0, report
    assert result.returncode == 0, result.stderr
