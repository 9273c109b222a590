"""Process names are hostile input: every way out of zombiectl shows them as data.

Three layers:
- unit tests of `zombiectl.untrusted` (display, for_json, from_proc);
- a property test: arbitrary bytes (1-15, no NUL: what comm can hold) as a process name,
  through every renderer's function: no exception, no raw control character, one line
  per plain sample, JSON that round-trips to the `for_json` form;
- system tests: real processes that name themselves with `prctl(PR_SET_NAME)` (and one
  PID 1 with an argv of arbitrary bytes) hold real zombies while every command runs as
  a subprocess, piped and on a pseudo-terminal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proctools import (
    GLOBAL_TIMEOUT,
    read_line,
    reap_adopted,
    unshare_works,
    wait_until,
    zombie_children,
)
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from zombiectl.check.render import json_text as check_json
from zombiectl.check.render import junit_xml
from zombiectl.check.render import panel as check_panel
from zombiectl.check.render import plain_text as check_plain
from zombiectl.check.verdict import Facts, Leaker, Limits, grade
from zombiectl.doctor.probes import Pid1, ZombiesNow, pid1_finding, zombies_finding
from zombiectl.doctor.render import render as doctor_view
from zombiectl.errors import report
from zombiectl.listing.render_table import listing_table
from zombiectl.listing.render_text import listing_json, listing_prometheus
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.identity import Target, read_identity
from zombiectl.proc.table import ParentZombies, ProcInfo, read_proc
from zombiectl.reaping.ladder import (
    REAPED,
    ParentPlan,
    ParentResult,
    Plan,
    ReapReport,
    planned_report,
)
from zombiectl.reaping.render import consent_question, plan_table, report_table
from zombiectl.untrusted import display, for_json, from_proc
from zombiectl.watching.lines import json_line, plain_line
from zombiectl.watching.render import live_view
from zombiectl.watching.tracker import Tracker

# The names an attacker tries, as the bytes a process gives prctl(PR_SET_NAME). The last
# one is 16 bytes: the kernel keeps 15, which cuts 語 in the middle.
HOSTILE = {
    "close-tag": b"[/]",
    "markup": b"[bold red]hi",
    "escapes": b"\x1b[2J\x1b[31m",
    "newline": b"a\nb",
    "tab": b"a\tb",
    "paren": b")",
    "stat-forgery": b") Z 1 (",
    "not-utf8": b"\xff\xfe",
    "emoji": "🧟zombie".encode(),
    "bidi": "\u202eevil".encode(),
    "cut": "zombie-日本語".encode(),
}
# What each looks like on a screen (`display`), after the kernel's 15-byte cut.
SHOWN = {
    "close-tag": "[/]",
    "markup": "[bold red]hi",
    "escapes": "\\x1b[2J\\x1b[31m",
    "newline": "a\\nb",
    "tab": "a\\tb",
    "paren": ")",
    "stat-forgery": ") Z 1 (",
    "not-utf8": "\\xff\\xfe",
    "emoji": "🧟zombie",
    "bidi": "\\u202eevil",
    "cut": "zombie-日本\\xe8\\xaa",
}
# Characters that must never reach a terminal raw (the test's own list, not the module's).
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
SGR = re.compile(r"\x1b\[[0-9;]*m")


def raw_controls(text: str, allowed: str = "\n") -> list[str]:
    return [ch for ch in text if ch not in allowed and unicodedata.category(ch) in UNSAFE]


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_display_of_each_hostile_name(key: str) -> None:
    name = from_proc(HOSTILE[key][:15])
    shown = display(name)
    assert shown == SHOWN[key]
    assert raw_controls(shown, allowed="") == []
    assert display(shown) == shown  # escaping twice changes nothing


def test_from_proc_writes_invalid_bytes_as_escapes_not_replacement_characters() -> None:
    assert from_proc(b"ok\xff\xc3") == "ok\\xff\\xc3"
    assert "\ufffd" not in from_proc(HOSTILE["cut"][:15])
    assert from_proc("é日本".encode()) == "é日本"


def test_for_json_keeps_valid_text_exactly_and_agrees_with_psutils_decoding() -> None:
    for raw in (b"a\nb\x1b[2J", "🧟\u202e".encode(), b"[/]"):
        assert for_json(from_proc(raw)) == raw.decode()
    raw = b"x\xff\xfey"
    assert for_json(raw.decode("utf-8", "surrogateescape")) == from_proc(raw) == "x\\xff\\xfey"
    assert for_json("\ud800") == "\\ud800"  # a lone surrogate no decoder made


def test_display_escapes_every_kind_of_invisible_or_reordering_character() -> None:
    assert display("a\rb\x7f\x85") == "a\\rb\\x7f\\x85"
    assert display("x\u2028y\u200bz") == "x\\u2028y\\u200bz"  # line separator, zero width
    assert display("\U000f0001") == "\\U000f0001"  # private use, outside the BMP
    assert display("é 日本 🧟 [b]") == "é 日本 🧟 [b]"  # printable text is left alone


# --------------------------------------------------------------------------- property

# Any 1-15 bytes without NUL, with a bias towards text that decodes (so multi-byte
# characters, controls and markup are tried, not only noise).
names = st.one_of(
    st.binary(min_size=1, max_size=15),
    st.text(min_size=1, max_size=15).map(lambda s: s.encode()[:15]),
    st.lists(st.sampled_from([*HOSTILE.values(), b"[", b"]", b"\\", b":zombie:"]), min_size=1).map(
        lambda parts: b"".join(parts)[:15]
    ),
).filter(lambda raw: raw and b"\0" not in raw)


def rendered(renderable: object, terminal: bool) -> str:
    """What a console writes: plain (piped) or with colours (a terminal), SGR codes removed."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=500,  # wide enough that no cell folds: the name must show in one piece
        force_terminal=terminal,
        color_system="standard" if terminal else None,
        highlight=False,
    )
    console.print(renderable)
    return SGR.sub("", out.getvalue())


def name_forms(raw: bytes) -> tuple[str, str]:
    """The name as the /proc reader decodes it, and as psutil does."""
    return from_proc(raw), raw.decode("utf-8", "surrogateescape")


def sample_of(name: str, pid: int | None) -> object:
    tracker = Tracker(pid, 0.0)
    zombie = ProcInfo(11, 10, "Z", name)
    parents = [ParentZombies(10, name, name, [11])] if pid is None else None
    tracker.update([ProcInfo(10, 1, "S", name), zombie], 0.0, parents=parents, name=name)
    return tracker.update([zombie], 1.0, parents=parents, name=name)


def reap_views(name: str) -> list[object]:
    ok = ParentPlan(10, name, name, (11, 12), Target(10, 1.0, name), note=f"note {name}")
    refused = ParentPlan(20, name, "root", (21,), None, refused=f"an ancestor ({name})")
    plan = Plan([ok, refused], kill_parent=True, force=True)
    done = ParentResult(10, name, 2, 0, ["SIGCHLD"], REAPED, f"reaped by {name}", 1, name)
    return [plan_table(plan), report_table(ReapReport([done])), plan]


def check_renderers(name: str, psutil_name: str) -> None:
    """`check`'s report of a leaker with this name (and command line): text, panel, JSON
    and JUnit XML, as a grader's terminal and CI system see them."""
    shown, expected = display(name), for_json(name)
    leaker = Leaker(10, name, f"{name} --serve", 2)
    facts = Facts([name, "--serve"], 10, "run", 0, 1.0, None, zombies_at_end=2, leakers=[leaker])
    report = grade(facts, Limits())
    text = check_plain(report)
    assert raw_controls(text) == [], text
    assert f"pid 10 {shown}: 2 zombie(s)  {shown} --serve" in text
    assert f"{shown} (pid 10) holds 2" in text and f"zombiectl check: {shown} --serve" in text
    for terminal in (False, True):
        drawn = rendered(check_panel(report), terminal)
        assert raw_controls(drawn) == [] and shown in drawn
    for form in (name, psutil_name):
        data = json.loads(check_json(grade(replace(facts, command=[form], leakers=[
            Leaker(10, form, form, 2)]), Limits())))  # fmt: skip
        assert data["command"] == [expected]
        assert data["leakers"][0]["name"] == expected == data["leakers"][0]["cmdline"]
    xml = junit_xml(report)
    suite = ET.fromstring(xml)  # XML 1.0 holds no control character: it must parse
    (failure,) = suite.iter("failure")
    # The message is the same from run to run; who holds the zombies is a property.
    other = ET.fromstring(
        junit_xml(grade(replace(facts, leakers=[Leaker(10, "x", "x", 2)]), Limits()))
    )
    assert failure.get("message") == next(other.iter("failure")).get("message")
    leakers = [p.get("value") for p in suite.iter("property") if p.get("name") == "leaker"]
    assert leakers == [f"pid 10 {shown}: 2"]
    (command,) = (p for p in suite.iter("property") if p.get("name") == "command")
    assert command.get("value") == f"{shown} --serve"
    assert raw_controls(xml.decode("utf-8"), allowed="\n") == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=names)
def test_any_name_through_every_renderer(raw: bytes) -> None:
    name, psutil_name = name_forms(raw)
    shown = display(name)
    # psutil's decoding comes out the same wherever a name goes out.
    assert display(psutil_name) == shown and for_json(psutil_name) == for_json(name)
    assert rendered(
        listing_table(ListResult(1, 1, [ParentZombies(10, psutil_name, "u", [11])], 0)), False
    ) == rendered(listing_table(ListResult(1, 1, [ParentZombies(10, name, "u", [11])], 0)), False)
    group = ParentZombies(10, name, name, [11, 12])
    listing = ListResult(3, 2, [group], 0.001)
    plan_view, report_view, plan = reap_views(name)
    findings = [zombies_finding(ZombiesNow(2, [{"pid": 10, "name": name, "zombies": 2}]))]
    findings.append(pid1_finding(Pid1(name, name, "default", False), None))
    views = [
        listing_table(listing),
        live_view(sample_of(name, 10), 1.0),
        plan_view,
        report_view,
        doctor_view(SimpleNamespace(findings=findings, bad=[])),  # type: ignore[arg-type]
    ]
    for view in views:
        for terminal in (False, True):
            text = rendered(view, terminal)
            assert raw_controls(text) == [], (view, text)
            assert shown in text  # literally, markup and all
    # The whole-system live view cuts long names to its column (with an ellipsis).
    for terminal in (False, True):
        assert raw_controls(rendered(live_view(sample_of(name, None), 1.0), terminal)) == []
    # Plain lines: exactly one line per sample, whatever the name holds.
    line = plain_line(sample_of(name, 10))  # type: ignore[arg-type]
    assert "\n" not in line and raw_controls(line, allowed="") == []
    assert f"({shown})" in line
    question = consent_question(plan)  # type: ignore[arg-type]
    assert "\n" not in question and raw_controls(question, allowed="") == []
    assert shown in question
    # JSON: the for_json form, the same from every command, for either decoding.
    expected = for_json(name)
    for form in (name, psutil_name):
        listing = ListResult(3, 2, [ParentZombies(10, form, "u", [11, 12])], 0.001)
        assert json.loads(listing_json(listing))["parents"][0]["name"] == expected
        watched = json.loads(json_line(sample_of(form, 10)))  # type: ignore[arg-type]
        assert watched["name"] == expected
        whole = json.loads(json_line(sample_of(form, None)))  # type: ignore[arg-type]
        assert whole["parents"][0]["name"] == expected
        reap_json = json.loads(json.dumps(planned_report(reap_views(form)[2]).as_dict()))
        assert {p["name"] for p in reap_json["parents"]} == {expected}
    if raw.decode("utf-8", "ignore").encode() == raw:  # valid UTF-8: the exact name
        assert expected == raw.decode()
    check_renderers(name, psutil_name)
    # Prometheus: valid for the reference parser; the label is the displayed name.
    exposition = listing_prometheus(listing)
    assert raw_controls(exposition) == []
    (series,) = [
        s
        for fam in text_string_to_metric_families(exposition)
        for s in fam.samples
        if s.name == "zombiectl_zombies_by_parent"
    ]
    assert series.labels["parent"] == shown and series.value == 2
    # An error message that quotes the name: one line on stderr.
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        report(f"zombiectl: error: pid 10 ({name}) is not a zombie")
    assert err.getvalue().count("\n") == 1 and raw_controls(err.getvalue()) == []
    assert shown in err.getvalue()


# --------------------------------------------------------------------------- real processes

# A parent that takes the name given in hex (prctl(PR_SET_NAME); its children inherit it),
# forks N children that exit, waits until they are zombies, prints "ready", and waits on
# stdin. Mode "reap": SIGCHLD reaps every child, as `reap` expects of a healthy parent.
# On EOF it reaps what is left and exits.
NAMED_PARENT = r"""
import ctypes, os, signal, sys, time
name, n, mode = bytes.fromhex(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if ctypes.CDLL(None).prctl(15, name, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_NAME) failed")
pids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)

def state(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return raw[raw.rindex(b")") + 2 :][:1]

while any(state(p) != b"Z" for p in pids):
    time.sleep(0.005)

def reap_all(signum, frame):
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return

if mode == "reap":
    signal.signal(signal.SIGCHLD, reap_all)
print("ready", *pids, flush=True)
sys.stdin.read()
for pid in pids:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
"""


class NamedParent:
    """A real process named `raw` (as the kernel keeps it) with `zombies` zombie children.

    Its argv[0] is arbitrary bytes too (the command line another user chose); the
    interpreter is named with `executable`.
    """

    def __init__(self, raw: bytes, zombies: int = 2, mode: str = "hold") -> None:
        argv0 = b"\x1b[2J[bold red]argv\xff"
        self.proc = subprocess.Popen(
            [
                argv0,
                b"-c",
                NAMED_PARENT.encode(),
                raw.hex().encode(),
                b"%d" % zombies,
                mode.encode(),
            ],
            executable=sys.executable,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self.zombie_pids: list[int] = []
        try:
            assert self.proc.stdout is not None
            words = read_line(self.proc.stdout).split()
            if not words or words[0] != "ready":
                raise RuntimeError(f"named parent did not start: {words!r}")
            self.zombie_pids = [int(w) for w in words[1:]]
            if not wait_until(lambda: len(zombie_children(self.pid)) == zombies):
                raise RuntimeError(f"{zombies} zombies did not appear under {self.pid}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """EOF on stdin: the parent reaps its children and exits; killed if it does not."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(GLOBAL_TIMEOUT)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        reap_adopted(pids=self.zombie_pids)


@pytest.fixture
def named_parent() -> Iterator[type[NamedParent]]:
    made: list[NamedParent] = []

    def make(raw: bytes, zombies: int = 2, mode: str = "hold") -> NamedParent:
        made.append(NamedParent(raw, zombies, mode))
        return made[-1]

    yield make  # type: ignore[misc]
    for parent in reversed(made):
        parent.close()


def _env() -> dict[str, str]:
    env = dict(os.environ, TERM="xterm", COLUMNS="250", LINES="60")
    for var in ("NO_COLOR", "FORCE_COLOR"):
        env.pop(var, None)
    return env


def piped(*args: str) -> subprocess.CompletedProcess[bytes]:
    """zombiectl ARGS with stdout and stderr on pipes, stdin closed."""
    return subprocess.run(
        [sys.executable, "-m", "zombiectl", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_env(),
        timeout=GLOBAL_TIMEOUT,
    )


def on_tty(*args: str, answer: bytes | None = None) -> tuple[int, bytes]:
    """zombiectl ARGS on a pseudo-terminal (colour and live views on); answer its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zombiectl", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(),
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if answer is not None and b"[y/N]" in seen:
                os.write(master, answer)
                answer = None
            if not ready and proc.poll() is not None:
                break
        return proc.wait(GLOBAL_TIMEOUT), seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def assert_safe(out: bytes, *shown: str) -> str:
    """No traceback, no escape sequence from a name; each name shown escaped."""
    text = out.decode("utf-8", "backslashreplace")
    assert "Traceback" not in text and "MarkupError" not in text, text
    assert b"\x1b[2J" not in out  # the name's clear-screen never reaches the terminal
    assert "\u202e" not in text  # nor its bidi override
    for s in shown:
        assert s in text, (s, text)
    return text


def test_every_view_of_hostile_parents_piped_and_on_a_terminal(named_parent) -> None:
    parents = {key: named_parent(raw) for key, raw in HOSTILE.items()}
    for key, p in parents.items():
        # The kernel kept the bytes; /proc and psutil read them the same way.
        assert read_proc(p.pid).name == from_proc(HOSTILE[key][:15])
        assert for_json(psutil.Process(p.pid).name()) == read_proc(p.pid).name
        assert read_identity(p.pid).name == read_proc(p.pid).name
    every = list(SHOWN.values())
    some_pid = [arg for p in parents.values() for arg in ("--pid", str(p.pid))]

    for args in (["list"], ["reap", *some_pid, "--dry-run"]):
        res = piped(*args)
        assert res.returncode == 0, res.stderr
        assert_safe(res.stdout + res.stderr, *every)
        rc, out = on_tty(*args)
        assert rc == 0, out
        assert_safe(out, *every)
    # Whole-system views that show only the biggest leakers: safe, whoever is shown.
    for args in (["watch", "--once"], ["reap", "--all", "--dry-run"]):
        res = piped(*args)
        assert res.returncode == 0, res.stderr
        assert_safe(res.stdout + res.stderr)
        rc, out = on_tty(*args)
        assert rc == 0, out
        assert_safe(out)

    listed = json.loads(piped("list", "--json").stdout)
    names = {g["pid"]: g["name"] for g in listed["parents"]}
    planned = json.loads(piped("reap", *some_pid, "--dry-run", "--json").stdout)
    reap_names = {g["pid"]: g["name"] for g in planned["parents"]}
    exposition = piped("list", "--format", "prometheus", "--top", "100000").stdout.decode()
    labels = {
        s.labels["ppid"]: s.labels["parent"]
        for fam in text_string_to_metric_families(exposition)
        for s in fam.samples
        if s.name == "zombiectl_zombies_by_parent"
    }
    assert raw_controls(exposition) == []
    for key, p in parents.items():
        exact = for_json(from_proc(HOSTILE[key][:15]))
        assert names[p.pid] == reap_names[p.pid] == exact
        assert labels[str(p.pid)] == SHOWN[key]
    assert names[parents["escapes"].pid] == "\x1b[2J\x1b[31m"  # JSON keeps the exact name
    assert names[parents["not-utf8"].pid] == "\\xff\\xfe"


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_watching_one_hostile_parent(named_parent, key: str) -> None:
    p = named_parent(HOSTILE[key])
    shown = SHOWN[key]
    (line,) = piped("watch", "--json", "--count", "1", "--pid", str(p.pid)).stdout.splitlines()
    sample = json.loads(line)
    assert sample["name"] == for_json(from_proc(HOSTILE[key][:15]))
    assert sample["zombie_pids"] == p.zombie_pids
    res = piped("watch", "--count", "2", "--interval", "0.05", "--pid", str(p.pid))
    lines = res.stdout.decode().split("\n")
    assert len(lines) == 3 and lines[2] == "", lines  # one line per sample, no more
    for text in lines[:2]:
        assert text.startswith("t=") and f"pid {p.pid} ({shown})" in text
        assert raw_controls(text, allowed="") == []
    rc, out = on_tty("watch", "--once", "--pid", str(p.pid))
    assert rc == 0
    assert_safe(out, f"pid {p.pid} ({shown})")
    # The title and both zombies' rows (the rows' column may cut a long name short).
    assert out.count(shown[:6].encode()) >= 3


def test_reap_plan_prompt_and_report_show_names_as_data(named_parent) -> None:
    markup = named_parent(HOSTILE["markup"], mode="reap")
    escapes = named_parent(HOSTILE["escapes"], mode="reap")
    # On a terminal the operator sees the plan and the question with the name as it is.
    rc, out = on_tty("reap", "--pid", str(markup.pid), answer=b"y\n")
    text = assert_safe(out, "[bold red]hi")
    assert f"Signal 1 parent: {markup.pid} ([bold red]hi)? [y/N]" in text
    assert rc == 0 and "reaped 2 zombies" in text, text
    assert zombie_children(markup.pid) == []
    res = piped("reap", "--pid", str(escapes.pid), "--yes")
    assert res.returncode == 0, res.stderr
    text = assert_safe(res.stdout + res.stderr, "\\x1b[2J\\x1b[31m", "reaped")
    assert raw_controls(text) == []
    assert zombie_children(escapes.pid) == []


def test_error_messages_quote_names_escaped(named_parent) -> None:
    p = named_parent(HOSTILE["newline"])
    res = piped("reap", "--zombie", str(p.pid), "--yes")
    assert res.returncode == 2
    err = res.stderr.decode()
    assert err.count("\n") == 1 and f"pid {p.pid} (a\\nb) is not a zombie" in err
    assert res.stdout == b""


def test_run_verbose_logs_a_hostile_command_name_escaped(tmp_path: Path) -> None:
    exe = tmp_path / "\x1b[2Jrun\nme"
    exe.symlink_to("/bin/true")
    res = subprocess.run(
        [sys.executable, "-m", "zombiectl", "run", "--verbose", "--", str(exe)],
        capture_output=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 0, res.stderr
    err = res.stderr.decode()
    assert "\\x1b[2Jrun\\nme" in err and b"\x1b" not in res.stderr
    assert all(line.startswith("zombiectl run: ") for line in err.splitlines())


DOCTOR_INIT = r"""
import ctypes, json, os, subprocess, sys
ctypes.CDLL(None).prctl(15, bytes.fromhex(sys.argv[1]), 0, 0, 0)
for _ in range(3):
    if os.fork() == 0:
        os._exit(0)
out = {}
for args in (["doctor", "--no-probe"], ["doctor", "--no-probe", "--json"]):
    res = subprocess.run([sys.argv[2], "-m", "zombiectl", *args], capture_output=True)
    out[" ".join(args)] = (res.returncode, (res.stdout + res.stderr).hex())
sys.stdout.write(json.dumps(out))
"""


@pytest.mark.root
@pytest.mark.skipif(not unshare_works(), reason="needs root and PID namespaces (unshare)")
def test_doctor_under_a_hostile_pid1_that_holds_zombies() -> None:
    """A container-like PID namespace: its PID 1 has a hostile name and command line,
    holds three zombies and runs `doctor`, which shows both its PID 1 and its leakers."""
    raw = HOSTILE["escapes"]
    res = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--", sys.executable, "-c", DOCTOR_INIT,
         raw.hex(), sys.executable],
        capture_output=True,
        timeout=2 * GLOBAL_TIMEOUT,
        env=_env(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    runs = {k: (rc, bytes.fromhex(out)) for k, (rc, out) in json.loads(res.stdout).items()}
    rc, out = runs["doctor --no-probe"]
    text = assert_safe(out, f"PID 1 is {SHOWN['escapes']}")
    assert text.count(SHOWN["escapes"]) >= 2, text  # PID 1, and PID 1 among the leakers
    assert raw_controls(text) == [] and rc in (0, 1), text
    rc, out = runs["doctor --no-probe --json"]
    report = json.loads(out)
    assert report["pid1"]["name"] == raw.decode()  # JSON: the exact name
    (leaker,) = report["zombies"]["parents"]
    assert (leaker["pid"], leaker["name"], leaker["zombies"]) == (1, raw.decode(), 3)
