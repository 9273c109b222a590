"""Every command's output in any locale, to a closed stdout and to a reader that left.

Real locales and real processes: an ISO-8859-9 locale built with `localedef` for the
session, `C` (Python's UTF-8 mode) and `C` with that mode off (ASCII); a parent with a
hostile name (`prctl(PR_SET_NAME)`, with an argv of raw bytes) that holds more than 8
zombies, so zombiectl's own "…" is drawn too. The oracle for a name is the stdlib's
`backslashreplace` in the locale's encoding, applied here to the screen form of the name.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proctools import GLOBAL_TIMEOUT
from test_untrusted import NamedParent

from zombiectl.stdout import ASCII_FALLBACK, error_handler

# 日, a clear-screen, a byte that is not UTF-8, and ğ (which ISO-8859-9 has: 0xf0).
NAME = "日\x1b[2J".encode() + b"\xff" + "ğ".encode()
SHOWN = "日\\x1b[2J\\xffğ"  # the name on a screen: controls and bad bytes escaped
ZOMBIES = 10  # more than the 8 pids a row shows: the rest is "… (+2)"

LEAKY = r"""
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, bytes.fromhex(sys.argv[1]), 0, 0, 0)
for _ in range(int(sys.argv[2])):
    if os.fork() == 0:
        os._exit(0)
time.sleep(float(sys.argv[3]))
"""


@settings(max_examples=300, deadline=None)
@given(text=st.text())
@pytest.mark.parametrize("encoding", ["iso8859-9", "ascii", "iso8859-1", "cp1252"])
def test_what_an_encoding_lacks_is_ascii_or_an_escape(encoding: str, text: str) -> None:
    """Against the stdlib's backslashreplace, after zombiectl's own symbols are swapped
    for their ASCII: the same bytes, and never an exception."""
    ours = text.encode(encoding, error_handler())
    theirs = "".join(
        ASCII_FALLBACK.get(ch, ch) if not _encodes(ch, encoding) else ch for ch in text
    ).encode(encoding, "backslashreplace")
    assert ours == theirs


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def test_every_symbol_of_zombiectls_has_an_ascii_form() -> None:
    for symbol, ascii_form in ASCII_FALLBACK.items():
        assert (
            ascii_form.isascii() and symbol.encode("ascii", error_handler()) == ascii_form.encode()
        )


@pytest.fixture(scope="module")
def locales(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """name -> the environment of that locale, with the encoding Python must pick."""
    localedef = shutil.which("localedef")
    if localedef is None:
        pytest.skip("localedef (libc-bin) is not installed")
    where = tmp_path_factory.mktemp("locales")
    subprocess.run(
        [localedef, "-i", "tr_TR", "-f", "ISO-8859-9", str(where / "tr_TR.ISO-8859-9")],
        check=True,
        capture_output=True,
        timeout=GLOBAL_TIMEOUT,
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHON"))}
    base.update(NO_COLOR="1", COLUMNS="200")
    return {
        "iso8859-9": dict(base, LOCPATH=str(where), LC_ALL="tr_TR.ISO-8859-9"),
        "utf-8": dict(base, LC_ALL="C"),  # Python's UTF-8 mode: the C locale
        "ascii": dict(base, LC_ALL="C", PYTHONUTF8="0"),
    }


@pytest.fixture(scope="module")
def hostile() -> Iterator[NamedParent]:
    parent = NamedParent(NAME, zombies=ZOMBIES)
    yield parent
    parent.close()


def zombiectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "zombiectl", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )


def expected(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "backslashreplace")


def clean(res: subprocess.CompletedProcess[bytes], encoding: str) -> str:
    """The output decodes in the locale's encoding; no traceback, no raw escape."""
    for stream in (res.stdout, res.stderr):
        text = stream.decode(encoding)  # raises if anything was written in another one
        assert "Traceback" not in text and "Error" not in text, text
        assert b"\x1b[2J" not in stream
    return res.stdout.decode(encoding)


@pytest.mark.parametrize("encoding", ["iso8859-9", "utf-8", "ascii"])
def test_the_locale_is_real(locales, encoding: str) -> None:
    probe = "import sys; print(sys.stdout.encoding, sys.stderr.encoding)"
    res = subprocess.run(
        [sys.executable, "-c", probe], env=locales[encoding], capture_output=True, text=True
    )
    got = res.stdout.split()
    assert [e.replace("_", "-").lower() for e in got] == [encoding, encoding], res


@pytest.mark.parametrize("encoding", ["iso8859-9", "utf-8", "ascii"])
def test_every_view_of_a_hostile_parent_with_many_zombies(locales, hostile, encoding) -> None:
    env = locales[encoding]
    pid = str(hostile.pid)
    name = expected(SHOWN, encoding)
    more = expected("…", encoding) if encoding == "utf-8" else b"..."
    # ğ survives where the encoding has it; what it lacks is an escape, not a crash.
    assert (b"\xf0" in name) == (encoding == "iso8859-9")
    for args in (
        ["list"],
        ["list", "--pid", pid],
        ["list", "--by", "container", "--pid", pid],
        ["reap", "--dry-run", "--pid", pid],
        ["watch", "--once", "--pid", pid],
    ):
        res = zombiectl(env, *args)
        assert res.returncode == 0, (args, res)
        clean(res, encoding)
        assert name in res.stdout, (args, res.stdout)
        if args[0] != "reap" and "container" not in args:  # their own cuts
            assert more + b" (+2)" in res.stdout, (args, res.stdout)
    # An error that quotes the name: one line on stderr, in the locale's encoding.
    res = zombiectl(env, "reap", "--zombie", pid)
    assert res.returncode == 2, res
    clean(res, encoding)
    assert res.stderr.count(b"\n") == 1 and b"(" + name + b") is not a zombie" in res.stderr
    # Whole-system views: whoever else holds zombies, they are drawn.
    for args in (["watch", "--once"], ["doctor"], ["explain"], ["demo", "--list"]):
        res = zombiectl(env, *args)
        assert res.returncode in (0, 1), (args, res)
        clean(res, encoding)


@pytest.mark.parametrize("encoding", ["iso8859-9", "ascii"])
def test_check_reports_a_hostile_leaker_in_the_locale(locales, encoding) -> None:
    res = zombiectl(
        locales[encoding], "check", "--", sys.executable, "-c", LEAKY, NAME.hex(), "10", "0.3"
    )
    assert res.returncode == 1, res  # it leaves 10 zombies: the check fails
    text = clean(res, encoding)
    assert "verdict: fail" in text
    assert expected(SHOWN, encoding) + b" (pid " in res.stdout


@pytest.mark.parametrize("encoding", ["iso8859-9", "ascii"])
def test_a_demo_marks_its_result_in_ascii_where_the_locale_has_no_tick(locales, encoding) -> None:
    res = zombiectl(
        locales[encoding], "demo", "fork", "--count", "2", "--interval", "0.05", "--hold", "0.3"
    )
    assert res.returncode == 0, res
    text = clean(res, encoding)
    assert "ok fork: expected 2, observed 2" in text, text


# --------------------------------------------------------------------------- closed, left

# Every command, as a user would run it; (args, exit status with stdout closed or gone).
# `run` writes nothing of its own: CMD's status passes through, even when CMD writes to
# the same stdout (closed: echo fails and sh goes on; gone: SIGPIPE ends sh, 128+13).
RUN = ["run", "--", "sh", "-c", "echo hi; exit 3"]
EVERY = [
    (["--version"], 141),
    (["--help"], 141),
    (["list"], 141),
    (["list", "--json"], 141),
    (["list", "--format", "prometheus"], 141),
    (["list", "--by", "container"], 141),
    (["list", "--help"], 141),
    (["watch", "--once"], 141),
    (["watch", "--once", "--json"], 141),
    (["demo", "--list"], 141),
    (["demo", "fork", "--count", "2", "--interval", "0.05", "--hold", "0.3"], 141),
    (["explain"], 141),
    (["reap", "--all", "--dry-run"], 141),
    (["doctor"], 141),
    (["doctor", "--json"], 141),
    (["check", "--", "true"], 141),
    (["check", "--json", "--", "true"], 141),
    (["run", "--", "sh", "-c", "exit 3"], 3),
]


def _ids(case: tuple[list[str], int]) -> str:
    return " ".join(case[0])


@pytest.mark.parametrize("case", [*EVERY, (RUN, 3)], ids=[_ids(c) for c in [*EVERY, (RUN, 3)]])
def test_closed_stdout_is_a_reader_that_left(case) -> None:
    args, status = case
    res = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "zombiectl", *args],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == status, res.stderr.decode()
    assert b"Traceback" not in res.stderr and b"Error" not in res.stderr, res.stderr


@pytest.mark.parametrize("case", [*EVERY, (RUN, 141)], ids=[_ids(c) for c in [*EVERY, (RUN, 141)]])
def test_a_reader_that_left_before_the_first_line(case) -> None:
    """A pipe whose reader is gone before zombiectl starts: the first write fails."""
    args, status = case
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", *args],
            stdin=subprocess.DEVNULL,
            stdout=w,
            stderr=subprocess.PIPE,
            timeout=GLOBAL_TIMEOUT,
        )
    finally:
        os.close(w)
    assert res.returncode == status, res.stderr.decode()
    assert b"Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("case", EVERY, ids=[_ids(c) for c in EVERY])
def test_a_full_disk_under_stdout_is_one_line_and_exit_74(case) -> None:
    """/dev/full: every write fails with ENOSPC. Whatever the command had started is
    cleaned up (the session's leak guard checks), and it says so in one line."""
    args, status = case
    with open("/dev/full", "wb") as full:
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", *args],
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=GLOBAL_TIMEOUT,
        )
    if args[0] == "run":
        assert res.returncode == status, res.stderr  # run writes nothing: CMD's status
        return
    assert res.returncode == 74, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    assert res.stderr.splitlines()[-1] == (
        "zombiectl: error: cannot write the output: No space left on device"
    )


class _FullDisk(io.RawIOBase):
    """A file on a full disk: writes fail with ENOSPC; no descriptor to redirect."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_write_still_buffered_at_the_end_is_flushed_and_told(monkeypatch, capsys) -> None:
    """A regular file on a full disk takes the first writes into Python's buffer: the
    failure comes with the last flush, which zombiectl makes before its exit."""
    from zombiectl.main import main

    buffered = io.TextIOWrapper(io.BufferedWriter(_FullDisk(), 1 << 16), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", buffered)
    with pytest.raises(SystemExit) as info:
        main(["demo", "--list"])
    assert info.value.code == 74
    assert capsys.readouterr().err == (
        "zombiectl: error: cannot write the output: No space left on device\n"
    )


# The first line each prints where it does not depend on the machine.
FIRST = {
    "demo --list": "fork ",
    "--help": "Usage: zombiectl",
    "list --help": "Usage: zombiectl list",
    "--version": "zombiectl ",
}


@pytest.mark.parametrize("case", [*EVERY, (RUN, 141)], ids=[_ids(c) for c in [*EVERY, (RUN, 141)]])
def test_head_one(case, tmp_path: Path) -> None:
    """`zombiectl ARGS | head -1`: the first line, then 0 or 141 (whether the reader left
    before the last write is a race), never a traceback; `run` gives CMD's status."""
    args, _ = case
    script = 'python3=$1; shift; "$python3" -m zombiectl "$@" 2>"$ERR" | head -1; '
    script += 'echo "status ${PIPESTATUS[0]}"'
    res = subprocess.run(
        ["bash", "-c", script, "bash", sys.executable, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, ERR=str(tmp_path / "err"), NO_COLOR="1"),
        timeout=GLOBAL_TIMEOUT,
    )
    *lines, last = res.stdout.splitlines()
    assert len(lines) <= 1, res.stdout
    if args[0] == "run":  # CMD's status: 3, or 141 when echo met the closed pipe
        allowed = {3, 141} if args == RUN else {3}
    else:  # doctor's 1: it found something to warn about on this machine
        allowed = {0, 141, *([1] if args[0] == "doctor" else [])}
    assert int(last.split()[1]) in allowed, res
    first = FIRST.get(_ids(case))
    if first is not None:
        assert lines and lines[0].startswith(first), res.stdout
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err and "Error" not in err, err
