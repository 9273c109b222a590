"""`demo` against real processes: every strategy's count equals its model, nothing is left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from proctools import GLOBAL_TIMEOUT, read_line, run_zombiectl_in_pids_cgroup

from zombiectl.demo.strategies import registry

FAST = ["--interval", "0.05", "--lifetime", "0.05", "--hold", "0.1", "--sample", "0.05"]


def fast_args(name: str) -> list[str]:
    s = registry.get(name)
    args = ["--hold", "0.1", "--sample", "0.05"]
    if "count" in s.uses:
        args += ["--count", "3"]
    if "interval" in s.uses:
        args += ["--interval", "0.05"]
    if "lifetime" in s.uses:
        args += ["--lifetime", "0.05"]
    return args


def summaries(stdout: str) -> list[dict]:
    events = [json.loads(line) for line in stdout.splitlines()]
    assert all(e["event"] in ("sample", "summary", "note") for e in events)
    return [e for e in events if e["event"] == "summary"]


def check(res, name: str) -> dict:
    assert res.returncode == 0, res.stderr
    (summary,) = summaries(res.stdout)
    assert summary["strategy"] == name
    assert summary["leftover"] == 0
    assert summary["final_zombies"] == summary["expected_final_zombies"], summary
    assert summary["ok"] is True
    return summary


CASES = [
    ("fork", [], 3),
    ("mp", [], 1),
    ("mp-single", [], 1),
    ("interleaved", ["--gap", "0.05"], 1),
    ("interleaved", ["--gap", "0"], 3),
    ("wait", [], 0),
    ("sigchld", [], 0),
    ("ignore", [], 0),
    ("double-fork", [], 0),
    ("active-children", [], 0),
    ("subprocess", [], 1),
    ("pool-close", [], 3),
]


@pytest.mark.parametrize(("name", "extra", "zombies"), CASES)
def test_strategy_matches_its_model(zombiectl, name: str, extra: list[str], zombies: int) -> None:
    method = ["--start-method", "fork"] if registry.get(name).uses_start_method else []
    res = zombiectl("demo", name, "--json", *fast_args(name), *extra, *method)
    summary = check(res, name)
    assert summary["final_zombies"] == zombies
    if name not in ("mp-single",):
        assert summary["children"] == 3
    events = [json.loads(x) for x in res.stdout.splitlines()]
    samples = [e for e in events if e["event"] == "sample"]
    assert samples and all(
        set(s) >= {"strategy", "t", "alive", "zombies", "reaped"} for s in samples
    )


@pytest.mark.parametrize(
    ("name", "extra", "zombies"),
    [("mp", [], 0), ("interleaved", ["--gap", "0"], 0), ("pool-close", [], 0)],
)
def test_forkserver_leaves_no_zombie_under_the_lab(zombiectl, name, extra, zombies) -> None:
    res = zombiectl(
        "demo", name, "--json", *fast_args(name), *extra, "--start-method", "forkserver"
    )
    summary = check(res, name)
    assert summary["start_method"] == "forkserver" and summary["final_zombies"] == zombies


@pytest.mark.parametrize(("name", "zombies"), [("mp", 1), ("interleaved", 3)])
def test_spawn_behaves_like_fork(zombiectl, name, zombies) -> None:
    extra = ["--gap", "0"] if name == "interleaved" else []
    res = zombiectl("demo", name, "--json", *fast_args(name), *extra, "--start-method", "spawn")
    assert check(res, name)["final_zombies"] == zombies


def test_default_start_method_is_shown(zombiectl) -> None:
    res = zombiectl("demo", "mp-single", "--json", *fast_args("mp-single"))
    assert check(res, "mp-single")["start_method"] == registry.default_start_method()
    plain = zombiectl("demo", "mp-single", *fast_args("mp-single"))
    assert plain.returncode == 0
    assert f"start method {registry.default_start_method()} (default)" in plain.stdout
    assert "✓ mp-single" in plain.stdout and "leftover 0" in plain.stdout


def test_strategy_exception_is_cleaned_up(zombiectl, monkeypatch) -> None:
    # The lab function raises after its second start, with two children blocked alive.
    monkeypatch.setenv("ZOMBIECTL_LAB_FAULT", "2")
    res = zombiectl("demo", "interleaved", "--gap", "0", "--count", "5", "--json")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert "the strategy failed" in res.stderr and "0 left" in res.stderr
    (summary,) = summaries(res.stdout)
    assert summary["ok"] is False and summary["leftover"] == 0 and "fault" in summary["error"]


@pytest.mark.slow
def test_demo_all_side_by_side(zombiectl) -> None:
    res = zombiectl("demo", "all", "--json", "--hold", "0.3")
    assert res.returncode == 0, res.stderr
    got = {s["experiment"]: s for s in summaries(res.stdout)}
    order = ["S1", "S2", "S3", "S4", "S5", "forkserver", "sigchld"]
    assert sorted(got) == sorted(order)  # each summary comes when its lab is done
    assert [got[k]["final_zombies"] for k in order] == [5, 1, 1, 1, 3, 0, 0]
    assert all(s["ok"] and s["leftover"] == 0 for s in got.values())
    assert got["S1"]["strategy"] == ("c" if shutil.which("cc") else "fork")


@pytest.mark.slow
def test_demo_all_plain_table(zombiectl) -> None:
    res = zombiectl("demo", "all", "--hold", "0")
    assert res.returncode == 0, res.stderr
    for label in ("S1", "S2", "S3", "S4", "S5", "forkserver", "sigchld"):
        assert f"✓ {label}" in res.stdout


def _run_in_pids_cgroup(limit: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_zombiectl_in_pids_cgroup(limit, ["demo", *args])


LONG_LIVED = ["--count", "40", "--json", "--interval", "0.01", "--lifetime", "20"]


@pytest.mark.root
@pytest.mark.parametrize(
    "args", [["fork"], ["active-children", "--start-method", "fork"]], ids=["fork", "mp"]
)
def test_fork_failure_is_one_clear_line_and_cleaned_up(args: list[str]) -> None:
    # A real EAGAIN from fork(): zombiectl runs in a pids cgroup that holds 10 processes
    # (root ignores RLIMIT_NPROC). Only that subprocess and its descendants are limited.
    res = _run_in_pids_cgroup(10, [*args, *LONG_LIVED])
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "fork failed after" in res.stderr and "cleaned up, 0 left" in res.stderr
    summary = summaries(res.stdout)[-1]
    assert summary["ok"] is False and summary["leftover"] == 0
    assert 0 < summary["children"] < 40


@pytest.mark.root
def test_zombiectl_itself_out_of_processes() -> None:
    # Room for zombiectl and its guard only: starting the lab parent fails.
    res = _run_in_pids_cgroup(2, ["fork", *LONG_LIVED])
    assert res.returncode == 6  # zombiectl's own resource limit, not the demo's failure
    assert res.stderr.count("\n") == 1 and "cannot start the demo" in res.stderr


def test_error_inside_zombiectl_still_cleans_up(monkeypatch) -> None:
    # In-process: the renderer fails while the lab has live children; the lab's group is
    # killed and reaped before the error leaves the command (the leak guard checks too).
    from click.testing import CliRunner

    from zombiectl.cli import cli
    from zombiectl.demo import render
    from zombiectl.demo import runner as labmod

    seen: list[int] = []

    def explode(self, labs, samples) -> None:
        for s in samples:
            if s.alive >= 2:
                seen.extend(labmod.proctable.child_pids(labs[0].pid))
                raise RuntimeError("renderer failed")

    monkeypatch.setattr(render.PlainPrinter, "update", explode)
    res = CliRunner().invoke(
        cli, ["demo", "fork", "--count", "30", "--interval", "0.02", "--lifetime", "30"]
    )
    assert isinstance(res.exception, RuntimeError)
    assert len(seen) >= 2
    assert not [pid for pid in seen if os.path.exists(f"/proc/{pid}")]


def test_reader_leaving_the_pipe_ends_quietly_after_clean_up() -> None:
    # `zombiectl demo ... | head -1`: exit 141 (as if by SIGPIPE), no traceback, no leak.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zombiectl",
            "demo",
            "fork",
            "--json",
            "--lifetime",
            "20",
            "--count",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, NO_COLOR="1"),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert read_line(proc.stdout).startswith('{"event": "sample"')
    proc.stdout.close()
    _, err = proc.communicate(timeout=GLOBAL_TIMEOUT)
    assert proc.returncode == 141
    assert b"Traceback" not in err
