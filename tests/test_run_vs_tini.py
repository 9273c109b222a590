"""The same scenarios under `tini -s --` and under `zombiectl run --`, with the same
expected results: exit status passthrough, death by a signal, signal forwarding (to CMD,
or to its process group), and a thousand orphans that exit at once all reaped.

Each scenario is parametrised over the inits; a peer's case is skipped (with the reason)
only where its binary is missing, and fails instead under CI (tests/peers.py).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from peers import require_peer
from proctools import GLOBAL_TIMEOUT, unshare_works

PROGRAMS = Path(__file__).parent / "programs"
RECORD = [sys.executable, str(PROGRAMS / "record_signals.py")]
ORPHANS = [sys.executable, str(PROGRAMS / "orphan_burst.py")]


def init_command(name: str, group: bool = False) -> list[str]:
    if name == "tini":
        return [require_peer("tini"), "-s", *(["-g"] if group else []), "--"]
    if name == "dumb-init":
        dumb_init = require_peer("dumb-init")
        # dumb-init signals CMD's whole session unless told --single-child.
        return [dumb_init, *([] if group else ["--single-child"]), "--"]
    return [sys.executable, "-m", "zombiectl", "run", *(["--group"] if group else []), "--"]


# tini and zombiectl run agree on every scenario here. dumb-init joins where it agrees;
# it differs on purpose elsewhere: a missing CMD exits 2, outside PID 1 it is no
# subreaper, and with --single-child CMD shares its terminal group, so ^C arrives twice.
INITS = ["tini", "zombiectl"]
ALL_INITS = ["tini", "dumb-init", "zombiectl"]


def run_under(
    init: str, cmd: list[str], timeout: float = GLOBAL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*init_command(init), *cmd], capture_output=True, text=True, timeout=timeout
    )


class LineReader:
    """Lines from a child's stdout, with a deadline on each (never a bare blocking read)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def line(self, timeout: float = GLOBAL_TIMEOUT) -> str:
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
    proc.wait(GLOBAL_TIMEOUT)
    if proc.stdout:
        proc.stdout.close()


@pytest.mark.parametrize("init", ALL_INITS)
@pytest.mark.parametrize("code", [0, 3, 42])
def test_exit_status_passes_through(init: str, code: int) -> None:
    assert run_under(init, ["sh", "-c", f"exit {code}"]).returncode == code


@pytest.mark.parametrize("init", ALL_INITS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_cmd_killed_by_a_signal_gives_128_plus_n(init: str, sig: signal.Signals) -> None:
    result = run_under(init, ["sh", "-c", f"kill -{sig.name[3:]} $$"])
    assert result.returncode == 128 + sig


@pytest.mark.parametrize("init", INITS)
def test_missing_command_exits_127(init: str) -> None:
    assert run_under(init, ["no-such-command-zombiectl"]).returncode == 127


@pytest.mark.parametrize("init", ALL_INITS)
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
        assert proc.wait(GLOBAL_TIMEOUT) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", ALL_INITS)
@pytest.mark.parametrize("sig", [signal.SIGPIPE, signal.SIGXFSZ])
def test_sigpipe_and_sigxfsz_sent_to_the_init_reach_cmd(init: str, sig: signal.Signals) -> None:
    """`kill -PIPE` or `kill -XFSZ` on the init kills a CMD that keeps the default action:
    141 and 153, as with tini and dumb-init."""
    proc = subprocess.Popen(
        [*init_command(init), "sh", "-c", "echo ready; exec sleep 60"], stdout=subprocess.PIPE
    )
    try:
        # sh and sleep both keep SIGPIPE and SIGXFSZ at their default (killing) action.
        assert LineReader(proc).line() == "ready"
        os.kill(proc.pid, sig)
        assert proc.wait(GLOBAL_TIMEOUT) == 128 + sig
    finally:
        stop(proc)


@pytest.mark.parametrize("init", ALL_INITS)
def test_a_script_without_a_shebang_runs_under_sh(init: str, tmp_path: Path) -> None:
    """execvp's ENOEXEC rule: `/bin/sh SCRIPT ARGS...`, and the script's status passes through."""
    script = tmp_path / "no-shebang"
    script.write_text('echo "$0|$1|$#"\nexit 7\n')
    script.chmod(0o755)
    result = run_under(init, [str(script), "one arg"])
    assert (result.returncode, result.stdout) == (7, f"{script}|one arg|1\n"), result.stderr


@pytest.mark.parametrize("init", ALL_INITS)
def test_a_script_without_a_shebang_is_found_on_path(init: str, tmp_path: Path) -> None:
    (tmp_path / "no-shebang").write_text("exit 5\n")
    (tmp_path / "no-shebang").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ.get('PATH', os.defpath)}"}
    result = subprocess.run(
        [*init_command(init), "no-shebang"],
        capture_output=True,
        text=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )
    assert result.returncode == 5, result.stderr


@pytest.mark.parametrize("init", ALL_INITS)
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
        assert proc.wait(GLOBAL_TIMEOUT) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", ALL_INITS)
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
        assert proc.wait(GLOBAL_TIMEOUT) == 0
    finally:
        stop(proc)


@pytest.mark.parametrize("init", INITS)
def test_a_signal_storm_never_kills_the_init(init: str) -> None:
    """Signals keep coming while CMD runs, exits and is reaped: the init passes CMD's
    status through and is never itself killed by one of them."""
    proc = subprocess.Popen(
        [*init_command(init), "sh", "-c", "trap '' HUP USR1 USR2; echo ready; sleep 0.5; exit 3"],
        stdout=subprocess.PIPE,
    )
    try:
        # CMD ignores them from now on; both inits block signals before starting CMD.
        assert LineReader(proc).line() == "ready"
        sent = 0
        deadline = time.monotonic() + GLOBAL_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                try:
                    os.kill(proc.pid, sig)
                    sent += 1
                except ProcessLookupError:
                    break
        assert sent > 0
        assert proc.wait(GLOBAL_TIMEOUT) == 3
    finally:
        stop(proc)


@pytest.mark.slow
@pytest.mark.parametrize("init", INITS)
def test_a_thousand_orphans_exiting_at_once_are_all_reaped(init: str) -> None:
    result = run_under(init, [*ORPHANS, "1000", "30"], timeout=2 * GLOBAL_TIMEOUT)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["adopted"] == 1000, report  # the init was the subreaper that adopted them
    assert report["left"] == 0 and report["zombies"] == 0, report
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.parametrize("init", ALL_INITS)
def test_as_pid_1_of_a_pid_namespace_a_thousand_orphans_are_reaped(init: str) -> None:
    """The container case: the init is PID 1 of a new PID namespace."""
    if not unshare_works():
        pytest.skip("needs root and a working `unshare --pid --fork --mount-proc`")
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *init_command(init), *ORPHANS, "1000", "30"],
        capture_output=True,
        text=True,
        timeout=2 * GLOBAL_TIMEOUT,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["adopted"] == 1000, report  # adopted by PID 1, the init
    assert report["left"] == 0 and report["zombies"] == 0, report
    assert result.returncode == 0, result.stderr


class Terminal:
    """A process started on a new pseudo-terminal (its controlling terminal)."""

    def __init__(self, argv: list[str]) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child execs at once
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.buf = b""

    def read_until(self, token: bytes, timeout: float = GLOBAL_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while token not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"{token!r} not seen in {self.buf!r}")
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the terminal's other side is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {token!r}: {self.buf!r}")
            self.buf += chunk
        return self.buf

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.parametrize("init", INITS)
def test_ctrl_c_on_a_terminal_reaches_cmd_exactly_once(init: str) -> None:
    term = Terminal([*init_command(init), *RECORD])
    try:
        term.read_until(b"ready")
        os.write(term.fd, b"\x03")  # ^C, as typed
        term.read_until(b"SIGINT")
        # SIGTERM sorts after SIGINT among pending signals: a duplicate would show first.
        os.kill(term.pid, signal.SIGTERM)
        term.read_until(b"SIGTERM")
        assert term.wait() == 0
        assert term.buf.count(b"SIGINT ") == 1, term.buf
    finally:
        term.close()


@pytest.mark.parametrize("init", ALL_INITS)
def test_cmd_owns_the_terminal_and_can_read_it(init: str) -> None:
    """CMD's process group gets the terminal's foreground: reading it does not stop CMD."""
    term = Terminal([*init_command(init), "sh", "-c", "echo ask; read line; echo got:$line"])
    try:
        term.read_until(b"ask")
        os.write(term.fd, b"hello\n")
        term.read_until(b"got:hello")
        assert term.wait() == 0
    finally:
        term.close()
