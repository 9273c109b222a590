"""docs/reference.md names every command, option, metric and exit code, so it cannot drift."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from zombiectl import errors
from zombiectl.cli import cli
from zombiectl.listing import render_text as text

REFERENCE = (Path(__file__).resolve().parent.parent / "docs" / "reference.md").read_text()


def _commands() -> Iterator[tuple[str, click.Command]]:
    """Every click command under the root, demo's strategy subcommands included."""
    ctx = click.Context(cli)

    def walk(path: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, name
                yield from walk(f"{path} {name}", sub)

    yield from walk("zombiectl", cli)


COMMANDS = list(_commands())
OPTIONS = sorted(
    {
        (path, flag)
        for path, cmd in COMMANDS
        for param in cmd.params
        if isinstance(param, click.Option)
        for flag in [*param.opts, *param.secondary_opts]
    }
)


def test_walk_finds_every_command_and_demo_strategy() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"zombiectl list", "zombiectl run", "zombiectl check"} <= paths
    assert {"zombiectl demo fork", "zombiectl demo server", "zombiectl demo all"} <= paths


@pytest.mark.parametrize(("path", "flag"), OPTIONS)
def test_every_option_is_in_the_reference(path: str, flag: str) -> None:
    # As the reference writes an option: in backquotes, alone or with its metavar.
    assert re.search(rf"`{re.escape(flag)}[` ]", REFERENCE), f"{path}: {flag} is not documented"


@pytest.mark.parametrize("path", sorted({p for p, _ in COMMANDS if p.count(" ") == 1}))
def test_every_command_has_a_section(path: str) -> None:
    assert re.search(rf"^### `{re.escape(path)}\b", REFERENCE, re.M), path


def test_every_metric_is_in_the_reference() -> None:
    source = Path(text.__file__).read_text()
    metrics = set(re.findall(r"\"(zombiectl_[a-z_]+)\"", source))
    assert len(metrics) >= 6
    for metric in metrics:
        assert f"`{metric}`" in REFERENCE, metric


def test_every_exit_code_is_in_the_reference() -> None:
    table = REFERENCE.split("## Exit codes", 1)[1]
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    for code in codes:
        assert re.search(rf"^\| (\d+ / )?{code}( / \d+)? \|", table, re.M), code
