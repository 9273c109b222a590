"""`demo` and `explain` parsing and errors: CliRunner and run_cli, no lab started."""

from __future__ import annotations

import inspect

import pytest
from click.testing import CliRunner

from zombiectl.cli import cli, run_cli
from zombiectl.demo.strategies import registry


def test_list_shows_every_strategy() -> None:
    res = CliRunner().invoke(cli, ["demo", "--list"])
    assert res.exit_code == 0
    names = [line.split()[0] for line in res.output.splitlines()]
    assert names == [*registry.names(), "all"]


def test_unknown_strategy_exits_2_with_the_list(capsys) -> None:
    assert run_cli(["demo", "zombify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown strategy 'zombify'" in err and "interleaved" in err and "all" in err


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "fork", "--count", "0"],
        ["demo", "fork", "--count", "10001"],
        ["demo", "fork", "--count", "many"],
        ["demo", "fork", "--interval", "-1"],
        ["demo", "fork", "--lifetime", "-0.5"],
        ["demo", "fork", "--hold", "-2"],
        ["demo", "interleaved", "--gap", "-1"],
        ["demo", "mp", "--start-method", "vfork"],
        ["demo", "fork", "--sample", "0.001"],
        ["demo", "fork", "--gap", "1"],  # not an option of fork
        ["demo", "fork", "--start-method", "spawn"],
        ["explain", "zombify"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], capsys) -> None:
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_help_has_an_example() -> None:
    for args in (["demo", "--help"], ["demo", "interleaved", "--help"], ["explain", "--help"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0
        assert "zombiectl demo" in res.output or "zombiectl explain" in res.output
    res = CliRunner().invoke(cli, ["demo", "mp", "--help"])
    assert "--start-method" in res.output and registry.default_start_method() in res.output


def test_strategy_options_reach_the_lab_params(monkeypatch) -> None:
    from zombiectl.demo import cli as demo

    seen = {}

    def fake_run(specs, sample, as_json):
        seen.update(vars(specs[0].params), method=specs[0].start_method, sample=sample)
        return 0

    monkeypatch.setattr(demo, "run_demo", fake_run)
    res = CliRunner().invoke(
        cli, ["demo", "interleaved", "--gap", "0", "--count", "4", "--start-method", "spawn"]
    )
    assert res.exit_code == 0, res.output
    assert seen["gap"] == 0 and seen["count"] == 4 and seen["method"] == "spawn"
    assert seen["sample"] == 0.1


@pytest.mark.parametrize("name", [n for n in registry.names()])
def test_explain_shows_the_real_source(name: str) -> None:
    res = CliRunner().invoke(cli, ["explain", name])
    assert res.exit_code == 0, res.output
    strategy = registry.get(name)
    for obj in strategy.source:
        first = inspect.getsource(obj).strip().splitlines()[0]
        assert first in res.output
        body = inspect.getsource(obj).strip().splitlines()[-1].strip()
        assert body in res.output
    assert strategy.fix.split()[0] in res.output


def test_explain_c_shows_the_c_program() -> None:
    res = CliRunner().invoke(cli, ["explain", "c"])
    assert "pid = fork();" in res.output and "pause();" in res.output


def test_explain_answers_the_posts_question() -> None:
    res = CliRunner().invoke(cli, ["explain", "interleaved"])
    out = " ".join(res.output.split())
    assert "timing, not sleep" in out
    assert "def _cleanup" in out and "waitpid" in out
    overview = CliRunner().invoke(cli, ["explain"])
    assert overview.exit_code == 0
    text = " ".join(overview.output.split())
    assert "<defunct>" in text and "forkserver" in text
    for name in registry.names():
        assert name in overview.output


def test_demo_all_hold_is_given_to_every_lab_not_patched_in() -> None:
    from zombiectl.demo import cli as demo

    held = demo.all_specs(0.3)
    assert [s.params.hold for s in held] == [0.3] * len(held)
    assert all(s.params.hold != 0.3 for s in demo.all_specs())
