"""`check --max-zombies N`: at most N zombies pass, N+1 fail, at the exact boundary.

A real parent holding N zombies is checked with `--pid` (nothing is started, signalled
or ended), once with the limit one below the count and once at it; the pure grading
is held to the same boundary for every N from 0 to 5.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_zombiectl
from proctools import zombie_children

from zombiectl.check.verdict import Facts, Leaker, Limits, grade


@pytest.mark.parametrize("n", range(6))
def test_grading_boundary(n: int) -> None:
    facts = Facts(["x"], 10, "run", 0, 1.0, None, zombies_at_end=n)
    if n:
        assert grade(facts, Limits(max_zombies=n - 1)).verdict == "fail"
    assert grade(facts, Limits(max_zombies=n)).verdict == "pass"
    assert grade(facts, Limits(max_zombies=n + 1)).verdict == "pass"


def test_the_failure_names_the_count_the_limit_and_the_leaker() -> None:
    facts = Facts(
        ["x"], 10, "run", 0, 1.0, None, zombies_at_end=3, leakers=[Leaker(10, "srv", "srv", 3)]
    )
    report = grade(facts, Limits(max_zombies=2))
    assert report.reasons == [
        "the tree holds 3 zombie(s) at the end (at most 2 allowed): srv (pid 10) holds 3"
    ]


@pytest.mark.parametrize("n", [1, 4])
def test_n_zombies_fail_n_minus_one_and_pass_n(zombie_parent, n: int) -> None:
    parent = zombie_parent(n)
    assert len(zombie_children(parent.pid)) == n
    runs = {}
    for limit in (n - 1, n):
        res = run_zombiectl(
            "check", "--json", "--pid", str(parent.pid), "--duration", "0.2",
            "--max-zombies", str(limit),
        )  # fmt: skip
        report = json.loads(res.stdout)
        assert report["zombies_at_end"] == n, report
        runs[limit] = (res.returncode, report["verdict"])
    assert runs == {n - 1: (1, "fail"), n: (0, "pass")}
    assert len(zombie_children(parent.pid)) == n  # --pid ends and reaps nothing


def test_the_limit_is_validated_as_a_whole_number() -> None:
    for bad in ("-1", "1.5", "nan", "١"):
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", "check", "--max-zombies", bad, "--", "true"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (bad, res.stderr)
