"""`demo server`: the forking echo server (Python and C) and the lab around it.

Two tiers: the servers run on their own (as a student would run them), driven by real
clients from this process, with zombies counted under the server's pid; then
`zombiectl demo server` as a subprocess, read through its JSON lines, including Ctrl-C,
SIGTERM and SIGKILL in the middle of a run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from peers import under_ci
from proctools import (
    GLOBAL_TIMEOUT,
    read_line,
    reap_adopted,
    run_zombiectl_in_pids_cgroup,
    wait_until,
    zombie_children,
)

from zombiectl.demo.server import echo
from zombiectl.demo.server.clients import drive, echo_once, wait_settled
from zombiectl.demo.strategies import registry
from zombiectl.errors import BadUsage, NotSupported, PermissionDenied
from zombiectl.proc import table as proctable

REAPS = echo.REAP_MODES
SERVER_BATCH = 8  # the servers' default --batch (wait-once)


def zombies_left(reap: str, clients: int, batch: int) -> int:
    """The lab's answer, worked out by hand: every handler stays with none; with
    wait-once, one is reaped per batch of handlers whose SIGCHLDs merged."""
    if reap == "none":
        return clients
    if reap == "wait-once":
        batches = (clients + batch - 1) // batch
        return clients - batches
    return 0


IMPLS = ("python", pytest.param("c", marks=pytest.mark.needs_cc))
LISTENING = re.compile(r"echo server (\d+) .*listening on (\S+) port (\d+)")


def _c_binary() -> str:
    """The C echo server, built into the cache. Without a compiler (or with one that
    cannot build it) the test is skipped locally and fails under CI; any other error
    (a refused cache, a bug in the build) fails it everywhere."""
    from zombiectl.demo.cbuild import build

    try:
        binary = build("echo_server")
    except NotSupported as err:
        if under_ci():
            pytest.fail(f"cannot build the C server under CI: {err}", pytrace=False)
        pytest.skip(f"cannot build the C server: {err}")
    binary.close()
    return str(binary.path)


class Server:
    """An echo server run on its own, in its own process group, dying with this process."""

    def __init__(
        self,
        impl: str,
        reap: str,
        port: int = 0,
        max_children: int = 64,
        timeout: float = 30.0,
        max_zombies: int = 256,
    ) -> None:
        if impl == "c":
            argv = [_c_binary(), reap, str(port), "127.0.0.1", str(max_children), str(timeout)]
            argv.append(str(max_zombies))
        else:
            argv = [
                sys.executable,
                "-m",
                "zombiectl.demo.server.echo",
                f"--reap={reap}",
                f"--port={port}",
                f"--max-children={max_children}",
                f"--timeout={timeout}",
                f"--max-zombies={max_zombies}",
            ]
        env = dict(os.environ, **{echo.PARENT_ENV: str(os.getpid())})
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        line = read_line(self.proc.stdout) if self.proc.stdout else ""
        m = LISTENING.search(line)
        self.port = int(m.group(3)) if m else 0
        self.line = line

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        reap_adopted(exclude=())


@pytest.fixture
def server() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(impl: str, reap: str, **kw: object) -> Server:
        s = Server(impl, reap, **kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


def handler_states(pid: int) -> tuple[int, int]:
    kids = proctable.children_of(pid)
    return sum(not k.is_zombie for k in kids), sum(k.is_zombie for k in kids)


# --------------------------------------------------------------------------- standalone


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reap", REAPS)
def test_each_reap_mode_leaves_the_zombies_it_should(server, impl: str, reap: str) -> None:
    srv = server(impl, reap)
    assert srv.port > 0, srv.line
    res = drive("127.0.0.1", srv.port, clients=6, concurrency=3)
    assert (res.ok, res.failed) == (6, 0), res.reasons
    assert wait_settled(srv.pid, pgid=srv.pid)
    assert len(zombie_children(srv.pid)) == zombies_left(reap, 6, SERVER_BATCH)
    assert srv.proc.poll() is None  # the server keeps serving


@pytest.mark.parametrize("impl", IMPLS)
def test_max_children_refuses_connections_beyond_the_cap(server, impl: str) -> None:
    srv = server(impl, "sigchld", max_children=2)
    held = []
    try:
        for i in range(2):  # two clients that stay connected: both slots taken
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=GLOBAL_TIMEOUT)
            s.sendall(b"hold %d\n" % i)
            assert s.recv(100) == b"hold %d\n" % i
            held.append(s)
        assert wait_until(lambda: handler_states(srv.pid)[0] == 2)
        refused = echo_once("127.0.0.1", srv.port, 99, timeout=GLOBAL_TIMEOUT)
        assert refused is not None and refused.startswith("refused"), refused
        assert handler_states(srv.pid)[0] == 2  # no third handler was forked
        held.pop().close()  # one client leaves: its slot comes back
        assert wait_until(lambda: handler_states(srv.pid)[0] == 1)
        assert echo_once("127.0.0.1", srv.port, 100, timeout=GLOBAL_TIMEOUT) is None
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_max_zombies_closes_new_connections_once_reached(server, impl: str) -> None:
    srv = server(impl, "none", max_zombies=3)
    for i in range(3):
        assert echo_once("127.0.0.1", srv.port, i, timeout=GLOBAL_TIMEOUT) is None
    assert wait_until(lambda: len(zombie_children(srv.pid)) == 3)
    for i in range(3, 6):  # the cap holds: closed, not forked
        refused = echo_once("127.0.0.1", srv.port, i, timeout=GLOBAL_TIMEOUT)
        assert refused is not None and refused.startswith("refused"), refused
    assert handler_states(srv.pid) == (0, 3)
    assert srv.proc.poll() is None  # still serving (closing), not dead
    os.killpg(srv.pid, signal.SIGKILL)
    srv.proc.wait(GLOBAL_TIMEOUT)
    err = srv.proc.stderr.read() if srv.proc.stderr else ""
    line = "echo server: 3 handlers forked and never reaped, each a zombie once it exits "
    # Said once, not once per connection refused.
    assert err == line + "(--max-zombies): closing new connections\n", err


@pytest.mark.parametrize("impl", IMPLS)
def test_max_zombies_does_not_cap_a_server_that_reaps(server, impl: str) -> None:
    srv = server(impl, "sigchld", max_zombies=2)
    res = drive("127.0.0.1", srv.port, clients=6, concurrency=1)
    assert (res.ok, res.failed) == (6, 0), res.reasons


@pytest.mark.parametrize("impl", IMPLS)
def test_a_silent_client_is_dropped_after_the_handler_timeout(server, impl: str) -> None:
    srv = server(impl, "none", timeout=0.3)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=GLOBAL_TIMEOUT) as s:
        assert wait_until(lambda: handler_states(srv.pid) == (1, 0))
        assert s.recv(100) == b""  # the handler gave up and closed, having read nothing
    assert wait_until(lambda: handler_states(srv.pid) == (0, 1))


@pytest.mark.parametrize("impl", IMPLS)
def test_port_in_use_is_one_line_and_exit_2(impl: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        srv = Server(impl, "none", port=busy.getsockname()[1])
        rc = srv.proc.wait(GLOBAL_TIMEOUT)
        err = srv.proc.stderr.read() if srv.proc.stderr else ""
        srv.kill()
    assert rc == 2
    assert err.count("\n") == 1 and "in use" in err, err


def test_clients_report_why_an_echo_failed() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = drive("127.0.0.1", port, clients=3, concurrency=2, timeout=5)
    assert (res.ok, res.failed) == (0, 3)
    assert sum(res.reasons.values()) == 3


# --------------------------------------------------------------------------- prepare


def test_non_loopback_host_warns(capsys) -> None:
    strategy = registry.get("server")
    p = strategy.prepare(strategy.params({"host": "0.0.0.0"}))  # type: ignore[misc]
    assert p.host == "0.0.0.0"
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err and err.count("\n") == 1
    assert "remote clients can fill the pid table (--max-zombies 256 caps" in err
    strategy.prepare(strategy.params({"host": "localhost"}))  # type: ignore[misc]
    assert capsys.readouterr().err == ""


def test_bad_host_is_bad_usage() -> None:
    strategy = registry.get("server")
    with pytest.raises(BadUsage):
        strategy.prepare(strategy.params({"host": "no such host.invalid"}))  # type: ignore[misc]


# --------------------------------------------------------------------------- demo server


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _summary(out: str) -> dict:
    return [e for e in _lines(out) if e["event"] == "summary"][-1]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reap", REAPS)
def test_demo_server_json(zombiectl, impl: str, reap: str) -> None:
    res = zombiectl(
        "demo", "server", "--impl", impl, "--reap", reap, "--clients", "4", "--json", "--hold", "0"
    )
    assert res.returncode == 0, res.stderr
    s = _summary(res.stdout)
    expected = zombies_left(reap, 4, 4)  # the batch: the 4 clients, all at once
    assert s["expected_final_zombies"] == expected
    assert s["final_zombies"] == expected
    assert (s["echoes_ok"], s["echoes_failed"]) == (4, 0)
    assert s["children"] == 4  # every handler the server forked was reported
    assert s["leftover"] == 0 and s["ok"] is True
    assert s["reap"] == reap and s["impl"] == impl
    notes = [e for e in _lines(res.stdout) if e["event"] == "note"]
    assert notes and LISTENING.search(notes[0]["text"])


def test_demo_server_port_in_use(zombiectl) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        res = zombiectl("demo", "server", "--port", str(busy.getsockname()[1]))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "in use" in res.stderr
    assert "Traceback" not in res.stderr


def test_demo_server_bad_options(zombiectl) -> None:
    for args in (
        ["--reap", "never"],
        ["--clients", "-1"],
        ["--max-children", "0"],
        ["--max-zombies", "0"],
        ["--max-zombies", "nan"],
        ["--port", "70000"],
        ["--impl", "rust"],
    ):
        res = zombiectl("demo", "server", *args)
        assert res.returncode == 2, args
        assert res.stderr.count("\n") == 1, res.stderr


def _popen_demo(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
    return subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "demo", "server", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_note(proc: subprocess.Popen[str]) -> tuple[int, int]:
    """(server pid, port) from the demo's note, reading its JSON lines as they come."""
    assert proc.stdout is not None
    while line := read_line(proc.stdout):
        if '"note"' in line:
            m = LISTENING.search(json.loads(line)["text"])
            assert m, line
            return int(m.group(1)), int(m.group(3))
    raise AssertionError(f"no note; stderr: {proc.stderr.read() if proc.stderr else ''}")


def _gone(pgid: int) -> bool:
    """Nothing of the server's process group is left, once our adopted zombies are reaped."""
    reap_adopted(timeout=0.5)
    return not proctable.process_group(pgid)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 143)])
def test_clients_0_serves_by_hand_until_ctrl_c(sig: int, code: int) -> None:
    """Ctrl-C is its normal end (0); SIGTERM still reports the run as terminated (143)."""
    proc = _popen_demo("--clients", "0", "--reap", "none")
    try:
        server, port = _read_note(proc)
        for i in range(3):  # a class connecting by hand
            assert echo_once("127.0.0.1", port, i, timeout=GLOBAL_TIMEOUT) is None
        assert wait_until(lambda: len(zombie_children(server)) == 3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert err.count("\n") == (0 if code == 0 else 1), err
    s = _summary(out)
    assert s["final_zombies"] == 3 and s["leftover"] == 0
    assert wait_until(lambda: _gone(server))


@pytest.mark.parametrize("impl", IMPLS)
def test_clients_0_holds_at_most_max_zombies_and_says_so(impl: str) -> None:
    if impl == "c":
        _c_binary()  # built (or the test skipped) before the demo starts
    proc = _popen_demo("--clients", "0", "--reap", "none", "--max-zombies", "3", "--impl", impl)
    try:
        server, port = _read_note(proc)
        answers = [echo_once("127.0.0.1", port, i, timeout=GLOBAL_TIMEOUT) for i in range(6)]
        assert answers[:3] == [None] * 3
        assert all(a is not None and a.startswith("refused") for a in answers[3:]), answers
        assert wait_until(lambda: len(zombie_children(server)) == 3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    notes = [e["text"] for e in _lines(out) if e["event"] == "note"]
    full = [n for n in notes if "closing new connections" in n]
    said = "echo server: 3 handlers forked and never reaped, each a zombie once it exits "
    assert full == [said + "(--max-zombies): closing new connections"], notes
    s = _summary(out)
    assert (s["final_zombies"], s["children"], s["leftover"]) == (3, 3, 0)
    assert wait_until(lambda: _gone(server))


def test_a_driven_run_keeps_one_zombie_per_client_past_max_zombies(zombiectl) -> None:
    args = ["--reap", "none", "--clients", "5", "--max-zombies", "2", "--json", "--hold", "0"]
    res = zombiectl("demo", "server", *args)
    assert res.returncode == 0, res.stderr
    s = _summary(res.stdout)
    assert (s["final_zombies"], s["expected_final_zombies"], s["echoes_ok"]) == (5, 5, 5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_mid_load_leaves_nothing(sig: int) -> None:
    proc = _popen_demo("--clients", "10000", "--reap", "none", "--concurrency", "8")
    try:
        server, _port = _read_note(proc)
        assert wait_until(lambda: len(zombie_children(server)) >= 20)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
        assert err.count("\n") == 1 and "interrupted" in err, err
        assert _summary(out)["leftover"] == 0
    assert wait_until(lambda: _gone(server)), proctable.process_group(server)


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reap", REAPS)
def test_demo_server_hundreds_of_clients(zombiectl, impl: str, reap: str) -> None:
    started = time.monotonic()
    res = zombiectl(
        "demo",
        "server",
        "--impl",
        impl,
        "--reap",
        reap,
        "--clients",
        "300",
        "--json",
        "--hold",
        "0",
        timeout=2 * GLOBAL_TIMEOUT,
    )
    assert res.returncode == 0, (res.stderr, time.monotonic() - started)
    s = _summary(res.stdout)
    assert (s["echoes_ok"], s["echoes_failed"]) == (300, 0)
    expected = zombies_left(reap, 300, 32)  # --concurrency 32: batches of 32
    assert s["final_zombies"] == s["expected_final_zombies"] == expected
    assert s["leftover"] == 0


def test_explain_server_shows_both_servers_and_each_fix(zombiectl) -> None:
    res = zombiectl("explain", "server")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for text in (
        "def serve(",
        "os.fork()",
        "def reap_children(",
        "os.WNOHANG",
        "srv.bind(",
        "static void reap_children",
        "errno == EINTR",
        "PEP 475",
        "SIG_IGN",
        "double-fork",
    ):
        assert text in out, text


class FakeContext:
    """Records what the client driver tells zombiectl."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def report(self, **fields: object) -> None:
        self.events.append(("report", fields))

    def done(self) -> None:
        self.events.append(("done", None))

    def settled(self) -> None:
        self.events.append(("settled", None))

    def error(self, kind: str, message: str) -> None:
        self.events.append(("error", (kind, message)))


def test_failed_echoes_fail_the_demo_after_the_final_count() -> None:
    from zombiectl.demo.strategies.server import companion

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r, w = os.pipe()
    os.write(w, b"echo server 1 listening on 127.0.0.1 port %d\n" % port)
    os.close(w)
    strategy = registry.get("server")
    ctx = FakeContext()
    gone = 2**22 + 7  # a server pid that does not exist: nothing to wait for
    companion(ctx, strategy.params({"clients": 3}), gone, r)  # type: ignore[arg-type]
    kinds = [k for k, _ in ctx.events]
    assert kinds == ["report", "note", "report", "report", "done", "settled", "error"]
    assert ("report", {"echoes_ok": 0, "echoes_failed": 3}) in ctx.events
    kind, message = ctx.events[-1][1]  # type: ignore[misc]
    assert kind == "echo" and message.startswith("3 of 3 echoes failed")


@pytest.mark.root
@pytest.mark.parametrize("impl", IMPLS)
def test_out_of_processes_is_one_clear_line_and_cleaned_up(impl: str) -> None:
    # A real EAGAIN from fork(): zombiectl runs in a pids cgroup of 20 tasks, and with
    # --reap none the zombies fill it. The Python server dies of the error; the C one
    # keeps serving and closes the connections it cannot fork for.
    if impl == "c":
        _c_binary()  # built outside the cgroup
    argv = ["demo", "server", "--impl", impl, "--clients", "60", "--concurrency", "1", "--json"]
    res = run_zombiectl_in_pids_cgroup(20, argv)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "cleaned up, 0 left" in res.stderr
    s = _summary(res.stdout)
    assert s["ok"] is False and s["leftover"] == 0
    if impl == "python":
        # The server dies of the error within milliseconds of its first forks, so the
        # sampler may not have seen its zombies before they were orphaned: the count
        # of forks comes from the error line, the sampled count can only be lower.
        m = re.search(r"fork failed after (\d+) children", res.stderr)
        assert m, res.stderr
        assert 0 < int(m.group(1)) < 20
        assert s["final_zombies"] <= int(m.group(1))
    else:
        assert 0 < s["final_zombies"] < 20
        assert s["echoes_ok"] == s["final_zombies"]
        # Closed before the echo: a reset, or a plain EOF when the close beat the payload.
        failures = s["echo_failures"]
        assert all(reason.startswith("refused") for reason in failures), failures
        assert sum(failures.values()) == 60 - s["echoes_ok"]


@pytest.mark.parametrize("ci", ["", "1"])
def test_a_c_build_error_skips_locally_and_fails_under_ci(ci: str, monkeypatch) -> None:
    from zombiectl.demo import cbuild

    def fails(name: str) -> object:
        raise NotSupported("the C compiler cc could not build echo_server.c (exit status 1)")

    monkeypatch.setattr(cbuild, "build", fails)
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="cannot build the C server"):
        _c_binary()


def test_a_refused_c_cache_fails_even_locally(monkeypatch) -> None:
    from zombiectl.demo import cbuild

    def refused(name: str) -> object:
        raise PermissionDenied("cannot use /x for the C demo: it is a symbolic link")

    monkeypatch.setattr(cbuild, "build", refused)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(PermissionDenied):
        _c_binary()
