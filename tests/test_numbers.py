"""Every number a user types: NaN, inf, huge, negative, non-ASCII and padded values are
refused with one line and exit 2 (a pid past any possible pid: "no such process", 3), by
click and by the click-free fast paths alike, and nothing is started or signalled.

The table of options is not written out by hand: it is every option of every command
(and of every `demo` strategy) whose type is a number, so an option added later is
checked too, and one declared with a plain click number type fails the test.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st
from proctools import GLOBAL_TIMEOUT, read_line

from zombiectl import validate
from zombiectl.cli import cli, run_cli
from zombiectl.fastpath import parse_list, parse_run
from zombiectl.main import main
from zombiectl.ui.options import Count, PidType, Seconds

BAD = ["nan", "inf", "-inf", "1e308", "99999999999999999999", "-1", "١٢", "²", " 12 ", "0x10", ""]
HUGE_PIDS = {"99999999999999999999", "2147483648"}
NUMBER_TYPES = (click.types._NumberParamTypeBase, PidType)


def _commands() -> Iterator[tuple[list[str], click.Command]]:
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            sub = click.Context(command, parent=ctx)
            for subname in command.list_commands(sub):
                subcommand = command.get_command(sub, subname)
                assert subcommand is not None
                yield [name, subname], subcommand
        yield [name], command


def numeric_options() -> list[tuple[list[str], str, click.ParamType]]:
    out = []
    for path, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, NUMBER_TYPES):
                out.append((path, param.opts[0], param.type))
    return out


OPTIONS = numeric_options()


def _argv(path: list[str], flag: str, value: str) -> list[str]:
    """The option with the least the command needs besides it to get as far as its pid."""
    rest = {"run": ["--", "true"], "check": ["--duration", "1"] if flag == "--pid" else []}
    return [*path, flag, value, *rest.get(" ".join(path), [])]


def test_the_table_covers_every_command() -> None:
    covered = {" ".join(path) for path, _, _ in OPTIONS}
    for expected in ("list", "watch", "reap", "run", "doctor", "demo fork", "demo server"):
        assert expected in covered
    flags = {(" ".join(p), f) for p, f, _ in OPTIONS}
    for expected in (("reap", "--zombie"), ("demo server", "--port"), ("demo all", "--sample")):
        assert expected in flags


@pytest.mark.parametrize(("path", "flag", "ptype"), OPTIONS, ids=lambda x: str(x))
def test_every_numeric_option_uses_a_validating_type_with_a_range(
    path: list[str], flag: str, ptype: click.ParamType
) -> None:
    assert isinstance(ptype, (PidType, Seconds, Count)), f"{path} {flag}: {ptype!r}"
    if isinstance(ptype, (Seconds, Count)):
        assert ptype.min is not None and ptype.max is not None
        assert math.isfinite(ptype.max)


def _children() -> set[int]:
    me = os.getpid()
    out: set[int] = set()
    for tid in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{tid}/children") as f:
            out.update(int(x) for x in f.read().split())
    return out


@pytest.mark.parametrize(("path", "flag", "ptype"), OPTIONS, ids=lambda x: str(x))
def test_bad_numbers_are_one_line_and_start_nothing(
    path: list[str], flag: str, ptype: click.ParamType, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _children()
    for value in [*BAD, "2147483648"]:
        rc = run_cli(_argv(path, flag, value))
        out, err = capsys.readouterr()
        beyond = isinstance(ptype, PidType) and value in HUGE_PIDS
        what = f"{' '.join(path)} {flag} {value!r}: {err!r}"
        assert rc == (3 if beyond else 2), what
        assert err.count("\n") == 1 and err.endswith("\n"), what
        assert ("no such process" in err) if beyond else (flag in err), what
        assert "Traceback" not in err and out == "", what
    assert _children() == before


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--json", "--pid", "²"],
        ["list", "--json", "--pid", "١٢"],
        ["list", "--json", "--pid", " 12 "],
        ["list", "--format", "prometheus", "--top", "1e308"],
        ["list", "--json", "--max", "-1"],
        ["run", "--grace", "nan", "--", "true"],
        ["run", "--grace=1e308", "--", "true"],
        ["run", "--grace", "١", "--", "true"],
    ],
)
def test_fast_paths_refuse_like_click(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(args)
    fast = (done.value.code, capsys.readouterr())
    slow = (run_cli(args), capsys.readouterr())
    assert fast == slow
    assert fast[0] == 2 and fast[1].err.count("\n") == 1 and fast[1].out == ""


@pytest.mark.parametrize("pid", sorted(HUGE_PIDS))
def test_fast_list_says_no_such_process_past_any_pid(zombiectl, pid: str) -> None:
    for args in (["list", "--json", "--pid", pid], ["list", "--pid", pid]):
        res = zombiectl(*args)
        assert res.returncode == 3, res.stderr
        assert res.stderr == f"zombiectl: error: no such process: {pid}\n"


def test_run_fast_path_starts_nothing_on_a_bad_grace(zombiectl, tmp_path) -> None:
    marker = tmp_path / "ran"
    res = zombiectl("run", "--grace", "nan", "--", "touch", str(marker))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "--pid", "12"],
        ["--json", "--pid=007", "--max", "0", "--top", "4194304"],
        ["--format", "prometheus", "--top", "0", "--max=3"],
    ],
)
def test_fast_list_parses_as_click_does(args: list[str]) -> None:
    from zombiectl.listing import cli as list_cmd

    fast = parse_list(args)
    assert fast is not None
    params = list_cmd.command.make_context("list", list(args)).params
    assert fast == params


@pytest.mark.parametrize("grace", ["0", "2.5", "1e3", ".5", "86400", "+7"])
def test_fast_run_parses_grace_as_click_does(grace: str) -> None:
    from zombiectl.init import cli as run_cmd

    fast = parse_run(["--grace", grace, "--", "true"])
    assert fast is not None
    ctx = run_cmd.command.make_context("run", ["--grace", grace, "--", "true"])
    assert fast["grace"] == ctx.params["grace"]


def test_reap_signals_nothing_on_a_bad_timeout(parent, tmp_path) -> None:
    p = parent("record", 2, log=tmp_path / "signals")
    for value in BAD:
        rc = run_cli(["reap", "--pid", str(p.pid), "--yes", "--kill-parent", "--timeout", value])
        assert rc == 2, value
    assert p.user_signals() == []
    assert p.proc.poll() is None


def test_help_states_each_maximum() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "zombiectl", "watch", "--help"], capture_output=True, text=True
    )
    assert "0.05<=x<=86400" in res.stdout, res.stdout
    assert "1<=x<=1000000000" in res.stdout


# --------------------------------------------------------------------------- validators


@given(st.text())
def test_seconds_accepts_only_finite_in_range(text: str) -> None:
    try:
        x = validate.seconds(text, minimum=0.05, maximum=600)
    except validate.InvalidValue as err:
        assert "\n" not in str(err)
        return
    assert math.isfinite(x) and 0.05 <= x <= 600
    assert text.isascii() and text == text.strip()


@given(st.text())
def test_whole_accepts_only_ascii_digits_in_range(text: str) -> None:
    try:
        n = validate.whole(text, minimum=0, maximum=65535)
    except validate.InvalidValue as err:
        assert "\n" not in str(err)
        return
    assert 0 <= n <= 65535
    assert text.lstrip("-").isascii() and text.lstrip("-").isdigit()


@given(st.text())
def test_pid_accepts_only_ascii_digits_from_1(text: str) -> None:
    try:
        n = validate.pid(text)
    except validate.InvalidValue as err:
        assert "\n" not in str(err)
        return
    assert n >= 1 and text.isascii() and text.isdigit()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_seconds_of_any_float_text(x: float) -> None:
    try:
        y = validate.seconds(repr(x))
    except validate.InvalidValue:
        assert not (math.isfinite(x) and 0 <= x <= validate.DAY)
        return
    assert y == x


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_whole_of_any_integer_text(n: int) -> None:
    try:
        m = validate.whole(str(n), minimum=-5, maximum=10**6)
    except validate.InvalidValue:
        assert not -5 <= n <= 10**6
        return
    assert m == n


# --------------------------------------------------------------------------- interrupts


def _watch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zombiectl", "watch", "--json", "--interval", "0.05", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 143)])
def test_watch_ends_on_sigint_with_0_and_on_sigterm_with_143(sig: int, code: int) -> None:
    proc = _watch()
    try:
        assert proc.stdout is not None and read_line(proc.stdout)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err == ("" if code == 0 else "zombiectl: terminated by SIGTERM\n")
