"""`check` grades student servers as a course would: servers of our own in C and Python
(tests/programs/student_server.*), each with one classic mistake, plus servers that drip,
flood or never answer. Each run is a real `zombiectl check`; its JSON, JUnit (read back
with junitparser) and Gradescope files are what is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite
from proctools import GLOBAL_TIMEOUT, build_c, reap_adopted, run_zombiectl_in_pids_cgroup
from test_check import check, check_json, free_port, read_until, start_check

from zombiectl.check.verdict import byte_swapped
from zombiectl.proc.table import descendants_of

PROGRAMS = Path(__file__).parent / "programs"
IMPLS = ["c", "py"]


@pytest.fixture(scope="module")
def student_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("student"), PROGRAMS / "student_server.c")


@pytest.fixture
def student(request: pytest.FixtureRequest) -> Iterator[object]:
    """student(impl, port, mode) -> the argv of that student server."""

    def argv(impl: str, port: int, mode: str) -> list[str]:
        if impl == "c":
            exe = request.getfixturevalue("student_c")
            return [str(exe), str(port), mode]
        return [sys.executable, str(PROGRAMS / "student_server.py"), str(port), mode]

    yield argv
    reap_adopted()
    assert descendants_of(os.getpid()) == []


def swapped_free_port() -> int:
    """A free port whose byte-swapped twin is free too (where the htons() bug listens)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", byte_swapped(port)))
            except OSError:
                continue
        if byte_swapped(port) != port:
            return port


def hint_codes(report: dict) -> list[str]:
    """The hints' codes, in the order the report gives them (what to fix comes first)."""
    return [h["code"] for h in report["hints"]]


def suite_of(path: Path) -> TestSuite:
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    assert len(suites) == 1
    return suites[0]


# --------------------------------------------------------------------------- the client


def test_drip_server_cannot_hold_a_client_past_its_deadline(student) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp", str(port), "--clients", "4", "--concurrency", "4", "--client-timeout", "1",
        "--", sys.executable, str(PROGRAMS / "drip_server.py"), str(port),
    )  # fmt: skip
    # One byte a second: the echo can never complete, and each client gives up at its
    # one deadline, not at a timeout renewed by every byte (which would never end).
    assert res.returncode == 1, res.stderr
    assert report["echoes_failed"] == 4
    assert report["reasons"] == ["4 of 4 replies failed (4 timed out)"]


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.mark.parametrize("expect", ["any", "echo"])
def test_flood_server_keeps_zombiectl_small(expect: str, student) -> None:
    port = free_port()
    proc = start_check(
        "--tcp", str(port), "--clients", "16", "--concurrency", "8", "--expect", expect,
        "--", sys.executable, str(PROGRAMS / "flood_server.py"), str(port),
    )  # fmt: skip
    peak = 0
    try:
        while proc.poll() is None:
            peak = max(peak, vm_hwm_kib(proc.pid) or 0)
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out)
    assert 0 < peak < 100 * 1024, f"peak RSS {peak} KiB"
    if expect == "any":  # a reply came; the flood after it is drained, never kept
        assert report["echoes_ok"] == 16 and report["replies_without_eof"] == 16
    else:  # bytes beyond the echo make it wrong, at once
        assert report["reasons"] == ["16 of 16 replies failed (16 wrong echo)"]


@pytest.mark.parametrize("impl", IMPLS)
def test_listen_backlog_5_at_concurrency_16_never_fails(impl: str, student) -> None:
    """The textbooks' listen(fd, 5): an overflowing backlog delays, never fails, a client."""
    for _ in range(10):
        port = free_port()
        report, res = check_json(
            "--tcp", str(port), "--clients", "32", "--concurrency", "16",
            "--", *student(impl, port, "listen5"),
        )  # fmt: skip
        assert res.returncode == 0, (report["reasons"], res.stderr)
        assert report["echoes_ok"] == 32 and report["verdict"] == "pass"


def test_failures_after_the_check_ends_the_server_are_not_counted(student) -> None:
    port = free_port()
    proc = start_check(
        "--tcp", str(port), "--clients", "8", "--concurrency", "8", "--client-timeout", "60",
        "--", sys.executable, str(PROGRAMS / "silent_server.py"), str(port),
    )  # fmt: skip
    try:
        read_until(proc, "at a time")
        time.sleep(0.3)  # the clients are connected and waiting for a reply
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out)
    assert proc.returncode == 143, err
    # Ending the server made every waiting client fail; none of that is the server's.
    assert report["echoes_failed"] == 0 and report["interrupted"] is True


def test_pace_spaces_the_clients_starts() -> None:
    """--pace S: no two clients start less than S apart (a lower bound, whatever the load)."""
    import threading

    from zombiectl.demo.server.clients import drive

    accepted: list[float] = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)

        def serve() -> None:
            for _ in range(4):
                conn, _ = srv.accept()
                accepted.append(time.monotonic())
                with conn:
                    conn.sendall(conn.recv(4096))

        server = threading.Thread(target=serve)
        server.start()
        started = time.monotonic()
        res = drive("127.0.0.1", srv.getsockname()[1], 4, 4, GLOBAL_TIMEOUT, pace=0.2)
        server.join(GLOBAL_TIMEOUT)
    assert res.ok == 4 and len(accepted) == 4
    # The fourth client cannot start before 3 paces have passed, so neither can its
    # connection be accepted (accept times themselves may bunch up on a busy machine).
    assert accepted[-1] - started >= 0.6, [t - started for t in accepted]


def test_crash_hint_names_the_signal_and_the_clients_served(student) -> None:
    port = free_port()
    report, res = check_json(
        "--tcp", str(port), "--clients", "6", "--concurrency", "1",
        "--", sys.executable, str(PROGRAMS / "forking_echo.py"), str(port), "crash",
    )  # fmt: skip
    assert res.returncode == 1
    crash = [h["text"] for h in report["hints"] if h["code"] == "crash"]
    # The server aborts on its fourth connection: one client at a time, three were served.
    assert crash == ["the command was killed by SIGABRT after 3 client(s) had been served"]


# --------------------------------------------------------------------------- error, not fail


def test_port_held_by_another_program_is_an_error_naming_it(tmp_path: Path, student) -> None:
    port = free_port()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys, time\n"
         "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)\n"
         "print('ready', flush=True); time.sleep(60)", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        junit = tmp_path / "j.xml"
        report, res = check_json(
            "--tcp", str(port), "--name", "alice", "--junit-xml", str(junit),
            "--", *student("py", port, "listen5"),
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 6, res.stderr
    assert report["verdict"] == "error" and report["children"] == 0
    assert f"pid {holder.pid}" in report["reasons"][0] and "python" in report["reasons"][0]
    suite = suite_of(junit)
    cases = {case.name: case for case in suite}
    (error,) = cases["environment"].result
    assert isinstance(error, Error) and error.type == "environment"
    assert suite.name == "alice"
    assert all(isinstance(cases[n].result[0], Skipped) for n in cases if n != "environment")


def test_zombiectl_out_of_processes_is_an_error_not_a_traceback() -> None:
    # A pids cgroup of one task: zombiectl itself. Its first fork fails with EAGAIN.
    res = run_zombiectl_in_pids_cgroup(1, ["check", "--json", "--", "/bin/true"])
    assert res.returncode == 6, res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads(res.stdout)
    assert report["verdict"] == "error"
    assert report["criteria"][0]["name"] == "environment"
    assert "resource" in report["reasons"][0]


# --------------------------------------------------------------------------- hints


@pytest.mark.parametrize("impl", IMPLS)
def test_byte_swapped_port_gets_the_wrong_port_hint(impl: str, student) -> None:
    port = swapped_free_port()
    report, res = check_json(
        "--tcp", str(port), "--ready-timeout", "1", "--", *student(impl, port, "swapped")
    )
    assert res.returncode == 1
    assert report["reasons"] == ["the server never listened on the port"]
    (hint,) = report["hints"]
    assert hint["code"] == "wrong-port"
    assert str(byte_swapped(port)) in hint["text"] and "htons" in hint["text"]


@pytest.mark.parametrize("impl", IMPLS)
def test_exit_before_listen_gets_its_status(impl: str, student) -> None:
    port = free_port()
    report, res = check_json("--tcp", str(port), "--", *student(impl, port, "exit"))
    assert res.returncode == 1 and report["exit_status"] == 1
    (hint,) = report["hints"]
    assert hint["code"] == "exit-before-listen" and "status 1" in hint["text"]


@pytest.mark.parametrize("impl", IMPLS)
def test_exit_before_listen_quotes_its_stderr(impl: str, student) -> None:
    port = free_port()
    report, _ = check_json("--tcp", str(port), "--", *student(impl, port, "exit"))
    assert "bind:" in report["hints"][0]["text"]


@pytest.mark.parametrize("impl", IMPLS)
def test_parent_that_never_closes_connfd_gets_the_no_close_hint(impl: str, student) -> None:
    port = free_port()
    report, res = check_json("--tcp", str(port), "--", *student(impl, port, "noclose"))
    assert res.returncode == 0, report["reasons"]  # a hint, not a failure
    assert report["echoes_ok"] == 20 and report["replies_without_eof"] == 20
    assert hint_codes(report)[0] == "no-close"
    assert not {"no-wait", "partial-reap"} & set(hint_codes(report))


@pytest.mark.parametrize("impl", IMPLS)
def test_one_wait_bug_is_caught_every_time_at_the_defaults(impl: str, student) -> None:
    missed = []
    for _ in range(10):
        port = free_port()
        report, _ = check_json("--tcp", str(port), "--", *student(impl, port, "once"))
        if report["verdict"] != "fail" or hint_codes(report)[:1] != ["partial-reap"]:
            missed.append((report["reasons"], report["hints"], report["collected_by_parent"]))
    assert missed == []


@pytest.mark.parametrize("impl", IMPLS)
def test_correct_server_gets_no_hint(impl: str, student) -> None:
    port = free_port()
    report, res = check_json("--tcp", str(port), "--", *student(impl, port, "listen5"))
    # Only how late a busy machine let it reap may be hinted at, never a mistake.
    assert res.returncode == 0 and set(hint_codes(report)) <= {"slow-reap"}


# --------------------------------------------------------------------------- counting


def test_sig_ign_server_never_has_a_zombie(student) -> None:
    for impl in IMPLS:
        port = free_port()
        report, res = check_json("--tcp", str(port), "--", *student(impl, port, "ignore"))
        assert res.returncode == 0 and report["max_zombies"] == 0, (impl, report)


@pytest.mark.parametrize("impl", IMPLS)
def test_lingering_handlers_of_a_parent_that_never_waits_fail(impl: str, student) -> None:
    port = free_port()
    report, res = check_json("--tcp", str(port), "--", *student(impl, port, "linger"))
    assert res.returncode == 1 and report["verdict"] == "fail"
    assert "no-wait" in hint_codes(report)


@pytest.mark.parametrize("impl", IMPLS)
def test_daemonising_server_is_served_and_passes(impl: str, student) -> None:
    port = free_port()
    report, res = check_json("--tcp", str(port), "--", *student(impl, port, "daemon"))
    assert res.returncode == 0 and report["echoes_ok"] == 20, report["reasons"]


# --------------------------------------------------------------------------- a class


def test_junit_and_gradescope_for_a_named_student(tmp_path: Path, student) -> None:
    messages = []
    for run in range(2):
        port = free_port()
        junit, gs = tmp_path / f"j{run}.xml", tmp_path / f"gs{run}.json"
        report, res = check_json(
            "--tcp", str(port), "--clients", "6", "--name", "bob <b@x>",
            "--junit-xml", str(junit), "--gradescope", str(gs),
            "--", sys.executable, str(PROGRAMS / "forking_echo.py"), str(port), "leak",
        )  # fmt: skip
        assert res.returncode == 1 and report["name"] == "bob <b@x>"
        suite = suite_of(junit)
        assert suite.name == "bob <b@x>"
        cases = {case.name: case for case in suite}
        assert {case.classname for case in suite} == {"bob <b@x>"}
        (failure,) = cases["zombies at end"].result
        assert isinstance(failure, Failure) and failure.type == "zombies at end"
        messages.append(failure.message)
        leakers = [p.value for p in suite.properties() if p.name == "leaker"]
        lk = report["leakers"][0]
        assert leakers == [f"pid {lk['pid']} {lk['name']}: 6"]
        results = json.loads(gs.read_text())
        scores = {t["name"]: (t["score"], t["max_score"], t["status"]) for t in results["tests"]}
        assert scores == {
            "zombies at end": (0, 1, "failed"),
            "reaped by parent": (1, 1, "passed"),
            "replies": (1, 1, "passed"),
            "listening": (1, 1, "passed"),
            "process": (1, 1, "passed"),
        }
        assert results["score"] == 4
    assert messages[0] == messages[1] and "pid" not in messages[0]


def test_never_served_server_skips_the_zombie_criteria(tmp_path: Path, student) -> None:
    port = free_port()
    junit = tmp_path / "j.xml"
    _, res = check_json(
        "--tcp", str(port), "--clients", "3", "--client-timeout", "0.5", "--junit-xml",
        str(junit), "--", sys.executable, str(PROGRAMS / "silent_server.py"), str(port),
    )  # fmt: skip
    assert res.returncode == 1
    cases = {case.name: case for case in suite_of(junit)}
    (skip,) = cases["zombies at end"].result
    assert isinstance(skip, Skipped) and "no client was served" in (skip.message or "")
    assert isinstance(cases["replies"].result[0], Failure)


def test_junit_carries_the_programs_output(tmp_path: Path, student) -> None:
    port = free_port()
    junit = tmp_path / "j.xml"
    check_json("--tcp", str(port), "--junit-xml", str(junit), "--", *student("py", port, "exit"))
    import xml.etree.ElementTree as ET

    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    assert "bind:" in (suite.findtext("system-err") or "")


# --------------------------------------------------------------------------- in class


@pytest.fixture(scope="module")
def lab_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = Path(__file__).parent.parent / "c_demos" / "echo_server.c"
    return build_c(tmp_path_factory.mktemp("lab"), source)


# The count each reap mode leaves for 20 clients, 8 at a time, worked out by hand: with
# wait-once they are 3 batches whose signals merge, so 3 are reaped and 17 stay.
LEFT_FOR_20_BY_8 = {"none": (20, 0), "sigchld": (0, 20), "wait-once": (17, 3)}


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("reap", sorted(LEFT_FOR_20_BY_8))
def test_demo_and_check_agree_on_the_same_server(impl: str, reap: str, request, student) -> None:
    """The lab's server, run by the demo and then graded by check: the same numbers."""
    left, reaped = LEFT_FOR_20_BY_8[reap]
    demo = subprocess.run(
        [sys.executable, "-m", "zombiectl", "demo", "server", "--reap", reap,
         "--impl", impl, "--clients", "20", "--concurrency", "8", "--json"],
        capture_output=True, text=True, timeout=GLOBAL_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    summary = json.loads(demo.stdout.splitlines()[-1])
    assert summary["expected_final_zombies"] == left and summary["final_zombies"] == left
    port = free_port()
    if impl == "c":
        server = [str(request.getfixturevalue("lab_c")), reap, str(port)]
    else:
        server = [sys.executable, "-m", "zombiectl.demo.server.echo", f"--reap={reap}"]
        server.append(f"--port={port}")
    report, res = check_json(
        "--tcp", str(port), "--clients", "20", "--concurrency", "8", "--", *server
    )
    assert res.returncode == (1 if left else 0), report["reasons"]
    assert report["zombies_at_end"] == left and report["collected_by_parent"] == reaped
    if reap == "wait-once":
        assert hint_codes(report)[:1] == ["partial-reap"]


def test_gradescope_path_through_a_symlink_is_refused_before_the_check(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "results.json"
    link.symlink_to(target)
    marker = tmp_path / "ran"
    res = check("--gradescope", str(link), "--", "touch", str(marker))
    assert res.returncode == 2 and "--gradescope" in res.stderr
    assert target.read_text() == "keep" and not marker.exists()


@pytest.mark.parametrize("name", ["", "   ", "x" * 257])
def test_bad_name_is_one_line_and_exit_2(name: str) -> None:
    res = check("--name", name, "--", "true")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--name" in res.stderr


def test_a_wave_ends_its_clients_together_and_never_waits_past_a_deadline() -> None:
    import threading

    from zombiectl.demo.server.clients import Wave

    wave = Wave(3)
    pairs = [socket.socketpair() for _ in range(2)]
    ended: list[bool] = []
    joiners = [
        threading.Thread(target=lambda s=a: ended.append(wave.join(s, GLOBAL_TIMEOUT)))
        for a, _ in pairs
    ]
    try:
        for t in joiners:
            t.start()
        time.sleep(0.05)
        assert ended == []  # the third client has not come yet
        wave.failed()  # it failed: the two waiting ones are ended at once
        for t in joiners:
            t.join(GLOBAL_TIMEOUT)
        assert ended == [True, True]
        for _, peer in pairs:
            peer.settimeout(GLOBAL_TIMEOUT)
            assert peer.recv(1) == b""  # each peer saw the end of its stream
        alone = Wave(2)
        a, b = socket.socketpair()
        with a, b:
            assert alone.join(a, 0.05) is False  # nobody else came: on its own
            a.sendall(b"x")  # still open for writing: the wave never touched it
            assert b.recv(1) == b"x"
    finally:
        for pair in pairs:
            for s in pair:
                s.close()
