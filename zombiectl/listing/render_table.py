"""rich renderables for the process table: `list`'s table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.listing.render_text import listing_footer, parents_columns, parents_row
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.containers import Container
from zombiectl.ui.cells import PARENTS_COLUMNS
from zombiectl.ui.tables import parents_table
from zombiectl.untrusted import display


def container_cell(c: Container | None, init: bool = False) -> Text:
    """A container's id (the host: "-"), marked when the parent is that container's PID 1."""
    if c is None:
        return Text("-", style="dim")
    text = Text(display(c.id))
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
    table.add_column("CONTAINER", overflow="fold")
    table.add_column("RUNTIME")
    table.add_column("INIT", justify="right")
    table.add_column("ZOMBIES", justify="right", style="bold red")
    table.add_column("PARENTS", justify="right")
    table.add_column("WORST PARENT", overflow="fold")
    for row in result.by_container():
        c = row.container
        worst = Text(f"{row.worst.pid} ")
        worst.append(display(row.worst.name))
        worst.append(f" ({row.worst.zombies})")
        table.add_row(
            Text("host") if c is None else container_cell(c),
            Text("-" if c is None or c.runtime is None else c.runtime),
            "-" if c is None else str(c.init_pid),
            str(row.zombies),
            str(row.parents),
            worst,
        )
    return table
