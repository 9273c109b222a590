"""The click-free fast paths: each parser agrees with click, and `list`'s piped table is rich's."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import click
import pytest
from proctools import GLOBAL_TIMEOUT
from rich.console import Console

from zombiectl.fastpath import parse_run
from zombiectl.init import cli as run_cmd
from zombiectl.listing import render_plain as plain
from zombiectl.listing.render_table import listing_table
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.containers import Container
from zombiectl.proc.table import ParentZombies
from zombiectl.ui.console import PIPE_WIDTH

RUN_CASES = [
    ["--", "true"],
    ["true", "a", "--group"],
    ["--group", "-v", "--", "a", "b"],
    ["--verbose", "--kill-descendants", "--grace", "2.5", "x"],
    ["--wait-descendants", "--grace=0", "--", "x"],
    ["--grace", "86400", "--", "x"],
    ["--", "--help"],
    ["--", "-v"],
    [],
    ["--"],
    ["--help"],
    ["-h"],
    ["--bogus", "--", "true"],
    ["--grace", "-1", "--", "true"],
    ["--grace", "nan", "true"],
    ["--grace", "86401", "true"],
    ["--grace"],
    ["--grace=", "x"],
    ["-vx", "x"],
    ["--group=1", "x"],
]


@pytest.mark.parametrize("args", RUN_CASES, ids=lambda a: " ".join(a) or "(none)")
def test_fast_run_parser_agrees_with_click(args: list[str]) -> None:
    fast = parse_run(args)
    try:
        ctx = run_cmd.command.make_context("run", list(args))
    except (click.UsageError, click.exceptions.Exit):
        assert fast is None, "the fast path accepts what click refuses"
        return
    if fast is not None:
        assert fast == ctx.params
    # What click accepts and the fast path defers is only a conflict the command reports.
    elif not (ctx.params["kill_descendants"] and ctx.params["wait_descendants"]):
        pytest.fail(f"the fast path defers a well-formed line: {args}")


def test_fast_run_parser_knows_every_click_option() -> None:
    fast = parse_run(["--", "true"])
    assert fast is not None
    assert set(fast) == {p.name for p in run_cmd.command.params if p.name != "help"}


def _result(
    parents: list[ParentZombies],
    containers: dict[int, Container | None] | None = None,
    inits: set[int] | None = None,
) -> ListResult:
    zombies = sum(g.zombies for g in parents)
    return ListResult(zombies + 40, zombies, parents, 0.0123, containers=containers, inits=inits)


def _rich_piped(result: ListResult) -> str:
    out = io.StringIO()
    console = Console(file=out, highlight=False, width=PIPE_WIDTH)  # not a terminal
    console.print(listing_table(result))
    return out.getvalue()


def _container(cid: str) -> Container:
    return Container(id=cid, runtime="runc", pod=None, pidns=4026532000, init_pid=7, cgroup="/x")


TABLES = {
    "empty": _result([]),
    "one": _result([ParentZombies(4242, "leaky-server", "www", [4243])]),
    "many": _result(
        [
            ParentZombies(7, "python3", "root", list(range(100, 160))),
            ParentZombies(123456, "a", "nobody", [200, 201]),
            ParentZombies(99, "x" * 15, "?", [300]),
        ]
    ),
    "hostile name": _result([ParentZombies(8, "[bold]a\x1b[2J\nb", "root", [9])]),
    "container": _result(
        [ParentZombies(7, "sh", "root", [8]), ParentZombies(30, "py", "root", [31, 32])],
        {7: _container("abc123"), 30: None},
        inits={7},
    ),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_plain_table_is_byte_identical_to_rich_piped(name: str) -> None:
    result = TABLES[name]
    text = plain.parents_table_text(result)
    assert text is not None
    assert text == _rich_piped(result)


def test_plain_table_leaves_wide_characters_to_rich() -> None:
    result = _result([ParentZombies(8, "名前", "root", [9])])
    assert plain.parents_table_text(result) is None


def test_piped_list_matches_rich_on_real_zombies(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(12)
    fast = zombiectl("list", "--pid", str(parent.pid))
    assert fast.returncode == 0, fast.stderr
    rich_env = {**os.environ, "FORCE_COLOR": "", "TTY_COMPATIBLE": "0"}
    code = (
        "import sys; from zombiectl.ui import console; console.draws_plain = lambda: False; "
        "from zombiectl.main import main; main(sys.argv[1:])"
    )
    slow = subprocess.run(
        [sys.executable, "-c", code, "list", "--pid", str(parent.pid)],
        capture_output=True,
        text=True,
        env=rich_env,
        timeout=GLOBAL_TIMEOUT,
        check=False,
    )
    assert slow.returncode == 0, slow.stderr
    # The same table; only the scan's duration in the footer differs.
    assert fast.stdout.splitlines()[:-1] == slow.stdout.splitlines()[:-1]
    assert str(parent.zombie_pids[0]) in fast.stdout
    assert fast.stdout.splitlines()[-1].startswith("1 parent leaks 12 zombies among")
