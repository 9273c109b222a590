"""The strategies' models and the registry, without processes."""

from __future__ import annotations

import pytest

from zombiectl.demo.strategies import registry
from zombiectl.errors import BadUsage

NAMES = [
    "fork",
    "c",
    "mp",
    "mp-single",
    "interleaved",
    "wait",
    "sigchld",
    "ignore",
    "double-fork",
    "active-children",
    "subprocess",
    "pool-close",
]


def expected(name: str, method: str | None = None, **given: object) -> int | None:
    s = registry.get(name)
    return s.expected(s.params(given), registry.resolve_start_method(s, method))


def test_every_spec_name_is_registered() -> None:
    assert set(NAMES) <= set(registry.names())


def test_unknown_strategy_is_bad_usage_listing_the_names() -> None:
    with pytest.raises(BadUsage) as err:
        registry.get("zombify")
    for name in NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["fork", "c"])
def test_never_waiting_leaves_one_zombie_per_child(name: str) -> None:
    assert expected(name, count=7) == 7
    assert expected(name) == 5  # the default count


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_with_a_direct_child(method: str) -> None:
    assert expected("mp", method, count=9) == 1  # S2: each start() reaps the earlier ones
    assert expected("mp-single", method) == 1  # S3
    assert expected("interleaved", method, count=3, gap=1.0) == 1  # S4
    assert expected("interleaved", method, count=3, gap=0.0) == 3  # S5
    assert expected("interleaved", method, count=6, gap=0.0) == 6
    assert expected("pool-close", method, count=4) == 4
    assert expected("active-children", method, count=4) == 0


def test_forkserver_reaps_everything() -> None:
    for name in ("mp", "mp-single", "interleaved", "pool-close", "active-children"):
        assert expected(name, "forkserver", count=4, gap=0.0) == 0


@pytest.mark.parametrize("name", ["wait", "sigchld", "ignore", "double-fork"])
def test_remedies_leave_none(name: str) -> None:
    assert expected(name, count=50) == 0


def test_abandoned_popen_leaves_the_last_one() -> None:
    assert expected("subprocess", count=8) == 1


def test_start_method_only_for_multiprocessing_strategies() -> None:
    assert registry.resolve_start_method(registry.get("fork"), "spawn") is None
    mp = registry.get("mp")
    assert registry.resolve_start_method(mp, "spawn") == "spawn"
    assert registry.resolve_start_method(mp, None) == registry.default_start_method()


def test_params_layering() -> None:
    s = registry.get("interleaved")
    p = s.params({"gap": None, "count": 4})
    assert p.count == 4 and p.gap == registry.COMMON_DEFAULTS["gap"]
    assert registry.get("mp-single").params({}).count == 1


def test_strategy_options_get_their_defaults() -> None:
    opt = registry.Option("--reap", "none", "how to reap", choices=("none", "sigchld"))
    s = registry.Strategy(
        name="x", title="t", entry="m:f", model=lambda p, m: 0, why="", fix="", options=(opt,)
    )
    assert opt.dest == "reap"
    assert s.params({}).reap == "none"
    assert s.params({"reap": "sigchld"}).reap == "sigchld"


def test_summary_ok_needs_match_and_no_leftover() -> None:
    from zombiectl.demo.model import Summary

    base = dict(
        label="fork",
        strategy="fork",
        start_method=None,
        children=3,
        max_zombies=3,
        final_zombies=3,
        expected_final_zombies=3,
        leftover=0,
        seconds=1.0,
    )
    assert Summary(**base).ok  # type: ignore[arg-type]
    assert not Summary(**{**base, "final_zombies": 2}).ok  # type: ignore[arg-type]
    assert not Summary(**{**base, "leftover": 1}).ok  # type: ignore[arg-type]
    assert not Summary(**base, error="boom").ok  # type: ignore[arg-type]
    d = Summary(**base, extra={"echoes_ok": 4}).as_dict()  # type: ignore[arg-type]
    assert list(d)[:10] == [
        "event",
        "strategy",
        "start_method",
        "children",
        "max_zombies",
        "final_zombies",
        "expected_final_zombies",
        "ok",
        "leftover",
        "seconds",
    ]
    assert d["echoes_ok"] == 4 and d["event"] == "summary"


def _finished_lab(name: str, label: str, final: int, expected_ok: bool = True, **given: object):
    from zombiectl.demo.model import LabSample, LabSpec, Summary
    from zombiectl.demo.runner import Lab

    s = registry.get(name)
    params = s.params({"count": 3, **given})
    spec = LabSpec(s, params, registry.resolve_start_method(s, "fork"), label)
    lab = Lab(spec)
    lab.last = LabSample(spec.name, name, 1.5, 0, final, 3 - final, label or None)
    lab.max_zombies = final
    expected = spec.expected if expected_ok else (spec.expected or 0) + 1
    lab.summary = Summary(
        spec.name, name, spec.start_method, 3, final, final, expected, 0, 1.5, experiment=label
    )
    return lab


def test_side_by_side_table_marks_matches_and_mismatches() -> None:
    from rich.console import Console

    from zombiectl.demo.render import side_by_side_table

    labs = [_finished_lab("fork", "S1", 3), _finished_lab("mp", "S2", 1, expected_ok=False)]
    console = Console(record=True, width=140, no_color=True)
    console.print(side_by_side_table([lab.spec for lab in labs], labs, "fork"))
    text = console.export_text()
    s1 = next(line for line in text.splitlines() if "S1" in line)
    s2 = next(line for line in text.splitlines() if "S2" in line)
    assert "✓" in s1 and "✗" in s2
    assert "fork (default)" in s2


def test_summary_line_says_why_and_what_is_left() -> None:
    from zombiectl.demo.render import summary_line, why

    lab = _finished_lab("interleaved", "S5", 3, gap=0.0)
    line = summary_line(lab.summary, why(lab.spec))
    assert line.startswith("✓ S5 runs interleaved (fork): expected 3, observed 3")
    assert "leftover 0" in line and "still running" in line
