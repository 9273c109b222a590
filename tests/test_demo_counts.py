"""Honest counts and readable output: only the strategy's children are counted, helpers
are named, `demo all` piped is grouped and ends with a summary table, nothing wraps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from proctools import GLOBAL_TIMEOUT

from zombiectl.demo.model import LabSpec
from zombiectl.demo.runner import Lab
from zombiectl.demo.strategies import registry


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_an_unreported_child_is_a_helper_never_reaped(zombie_parent) -> None:
    # A parent with one zombie the "strategy" reported and one live child it did not:
    # like the server lab's companion, the second is a helper, never alive nor reaped.
    parent = zombie_parent(1, alive=1)
    lab = Lab(LabSpec(registry.get("fork"), SimpleNamespace(count=1)))
    lab.pid = parent.pid
    lab.tracked = set(parent.zombie_pids)
    s = lab.sample(0.0)
    assert (s.alive, s.zombies, s.reaped, s.helpers) == (0, 1, 0, 1)
    parent.close()  # reaps both children and exits
    s = lab.sample(1.0)
    assert (s.alive, s.zombies, s.reaped, s.helpers) == (0, 0, 1, 0)


def test_forkserver_helpers_are_named_not_counted(zombiectl) -> None:
    res = zombiectl(
        "demo", "mp", "--start-method", "forkserver", "--count", "2", "--interval", "0.05",
        "--lifetime", "0.05", "--hold", "0.1", "--sample", "0.05", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    evs = events(res.stdout)
    summary = evs[-1]
    assert summary["helpers"] == ["fork server", "resource tracker"]
    assert summary["children"] == 2 and summary["final_zombies"] == 0
    samples = [e for e in evs if e["event"] == "sample"]
    assert samples[-1]["alive"] == 0 and samples[-1]["helpers"] == 2
    assert all(e["alive"] + e["zombies"] <= 2 for e in samples)
    plain = zombiectl(
        "demo", "mp", "--start-method", "forkserver", "--count", "1", "--hold", "0",
        "--lifetime", "0.01", "--sample", "0.05",
    )  # fmt: skip
    assert "helpers 2 (fork server and resource tracker: multiprocessing's own, not workers)" in (
        plain.stdout
    )


def _server_run() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zombiectl",
            "demo",
            "server",
            "--reap",
            "none",
            "--clients",
            "6",
            "--concurrency",
            "3",
            "--sample",
            "0.02",
            "--hold",
            "0",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_server_reap_none_never_shows_a_reap() -> None:
    # The lab forks a short-lived companion before serving; it must never read as a reap.
    runs = 0
    while runs < 20:
        batch = [_server_run() for _ in range(4)]
        for proc in batch:
            out, err = proc.communicate(timeout=2 * GLOBAL_TIMEOUT)
            assert proc.returncode == 0, err
            evs = events(out)
            assert [e["reaped"] for e in evs if e["event"] == "sample"] == [0] * sum(
                e["event"] == "sample" for e in evs
            )
            assert evs[-1]["final_zombies"] == 6 and evs[-1]["children"] == 6
            runs += 1


def test_wait_explains_the_pile_up(zombiectl) -> None:
    res = zombiectl("demo", "wait", "--count", "2", "--interval", "0.05", "--lifetime", "0.01")
    assert res.returncode == 0, res.stderr
    assert "zombies pile up until the loop ends" in res.stdout
    ex = zombiectl("explain", "wait")
    assert "only once the fork loop is over" in ex.stdout


@pytest.mark.slow
def test_demo_all_piped_is_grouped_and_summed_up(zombiectl) -> None:
    res = zombiectl("demo", "all", "--hold", "0", "--sample", "0.05")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    labels = ["S1", "S2", "S3", "S4", "S5", "forkserver", "sigchld"]
    body = lines[: lines.index("summary:")]
    heads = [
        i
        for i, line in enumerate(body)
        if re.match(r"^(S\d|forkserver|sigchld)( runs [a-z-]+)?: ", line)
    ]
    assert [lines[i].split()[0].rstrip(":") for i in heads] == labels
    # Each block: its header, its samples, its verdict; no other lab's line in between.
    for n, i in enumerate(heads):
        end = heads[n + 1] if n + 1 < len(heads) else lines.index("summary:")
        block = lines[i + 1 : end]
        verdicts = [line for line in block if line.startswith(("✓", "✗"))]
        assert len(verdicts) == 1 and verdicts[0].startswith(f"✓ {labels[n]}")
        assert all(line.startswith(("t=", "✓", "  ")) or not line for line in block)
    assert "gap 1.0 s" in lines[heads[3]] and "gap 0;" in lines[heads[4]]
    table = lines[lines.index("summary:") :]
    for label, seen in (("S1", "one more per fork"), ("S5", "all three stay zombies")):
        assert any(label in row and seen in row for row in table)
    legend = table[-1]
    assert "max:" in legend and "leftover:" in legend and "S1-S5" in legend


def test_explain_piped_never_splits_a_word(zombiectl) -> None:
    env = dict(os.environ, COLUMNS="40")
    for args in (["explain"], ["explain", "mp"]):
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", *args], capture_output=True, text=True, env=env
        )
        assert res.returncode == 0
        assert "multiprocessing.Pro\n" not in res.stdout
    overview = subprocess.run(
        [sys.executable, "-m", "zombiectl", "explain"], capture_output=True, text=True, env=env
    ).stdout
    row = next(line for line in overview.splitlines() if line.startswith("│ mp "))
    assert "multiprocessing.Process(...).start() in a loop, never join()" in row
    # The post, by its title in Chinese and in English.
    assert "python3 多进程 multiprocessing对僵尸进程的处理" in overview
    assert "Python 3 multiprocessing and how it handles zombie processes" in overview
