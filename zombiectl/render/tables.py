"""rich renderables for the process table: `list`'s table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.listing.zombies import ListResult
from zombiectl.render.safe import data

PIDS_SHOWN = 8


def format_pids(pids: list[int], shown: int = PIDS_SHOWN) -> str:
    text = " ".join(str(p) for p in pids[:shown])
    if len(pids) > shown:
        text += f" … (+{len(pids) - shown})"
    return text


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def listing_footer(result: ListResult) -> str:
    scan = f"scan {result.scan_seconds * 1000:.1f} ms"
    if not result.parents:
        where = f" under pid {result.pid}" if result.pid is not None else ""
        return (
            f"no zombies{where} among {plural(result.processes, 'process', 'processes')} ({scan})"
        )
    return (
        f"{plural(len(result.parents), 'parent')} "
        f"{'leaks' if len(result.parents) == 1 else 'leak'} "
        f"{plural(result.zombies, 'zombie')} among "
        f"{result.processes} processes ({scan})"
    )


def parents_table() -> Table:
    """The columns every table of zombies by parent starts with (`list`, `reap`'s plan)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("PARENT", justify="right")
    table.add_column("NAME", overflow="fold")
    table.add_column("USER")
    table.add_column("ZOMBIES", justify="right", style="bold red")
    table.add_column("ZOMBIE PIDS", overflow="fold")
    return table


def listing_table(result: ListResult) -> RenderableType:
    footer = Text(listing_footer(result), style="dim")
    if not result.parents:
        return footer
    table = parents_table()
    for g in result.parents:
        table.add_row(
            str(g.pid), data(g.name), data(g.user), str(g.zombies), format_pids(g.zombie_pids)
        )
    return Group(table, footer)
