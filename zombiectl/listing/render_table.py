"""rich renderables for the process table: `list`'s table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.listing.render_text import (
    CONTAINERS_COLUMNS,
    CONTAINERS_RIGHT,
    container_title,
    containers_rows,
    listing_footer,
    parents_columns,
    parents_row,
)
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.containers import Container
from zombiectl.ui.cells import PARENTS_COLUMNS
from zombiectl.ui.tables import parents_table
from zombiectl.untrusted import display


def container_cell(c: Container | None, init: bool = False) -> Text:
    """A container's id (the host: "-"), marked when the parent is that container's PID 1."""
    if c is None:
        return Text("-", style="dim")
    text = Text(display(container_title(c)))
    if init:
        text.append(" (init)", style="bold")
    return text


def listing_table(result: ListResult) -> RenderableType:
    footer = Text(listing_footer(result), style="dim")
    if not result.parents:
        return footer
    if result.by == "container":
        return Group(containers_table(result), footer)
    columns = parents_columns(result)
    with_container = len(columns) > len(PARENTS_COLUMNS)
    table = parents_table(columns)
    for g in result.parents:
        # Text, never markup: a name is whatever its process chose.
        row: list[RenderableType] = [Text(cell) for cell in parents_row(result, g, with_container)]
        if with_container:  # the same text, with rich's styles
            row[-1] = container_cell(result.container_of(g.pid), g.pid in result.inits)
        table.add_row(*row)
    return Group(table, footer)


def containers_table(result: ListResult) -> Table:
    """`list --by container`: one row per container, its zombies and its worst parent."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in CONTAINERS_COLUMNS:
        if title == "ZOMBIES":
            table.add_column(title, justify="right", style="bold red")
        elif title in CONTAINERS_RIGHT:
            table.add_column(title, justify="right")
        else:
            table.add_column(title, overflow="fold")
    for row in containers_rows(result):
        # Text, never markup: names are whatever their processes chose.
        table.add_row(*(Text(cell) for cell in row))
    return table
