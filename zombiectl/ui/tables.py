"""The rich tables more than one command draws."""

from __future__ import annotations

from rich.table import Table

from zombiectl.ui.cells import PARENTS_COLUMNS, RIGHT_JUSTIFIED


def parents_table(columns: tuple[str, ...] = PARENTS_COLUMNS) -> Table:
    """A table of zombies by parent (`list`, `reap`'s plan), with these columns."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in columns:
        if title in RIGHT_JUSTIFIED:
            style = "bold red" if title == "ZOMBIES" else None
            table.add_column(title, justify="right", style=style)
        else:
            table.add_column(title, overflow="ellipsis" if title == "USER" else "fold")
    return table
