"""`list`'s table as plain text, the way rich draws it on a pipe, without importing rich.

A script that runs `zombiectl list | ...` on a big table pays for every import; rich
costs more than the scan. Piped, rich draws no colour and no wrap (the console is
`PIPE_WIDTH` wide), so the table is a fixed-width layout this module writes itself,
byte for byte the same (tests/test_fastpath.py holds the two side by side). Where it could
differ (a cell holding wide or combining characters, whose width only rich measures
the same way), `parents_table_text` returns None and rich draws.

    $ zombiectl list | cat -A
    PARENT  NAME    USER  ZOMBIES  ZOMBIE PIDS      $
     29774  python  root        3  29805 29810 29811$
     29709  python  root        2  29715 29716      $
    2 parents leak 5 zombies among 103 processes (scan 2.0 ms)$
"""

from __future__ import annotations

from zombiectl.listing.render_text import (
    CONTAINERS_COLUMNS,
    CONTAINERS_RIGHT,
    containers_rows,
    listing_footer,
    parents_columns,
    parents_row,
)
from zombiectl.listing.zombies import ListResult
from zombiectl.ui.cells import PARENTS_COLUMNS, RIGHT_JUSTIFIED
from zombiectl.ui.console import PIPE_WIDTH

# Characters whose width is one column in rich as everywhere: printable ASCII, and the
# ellipsis of a cut list of pids.
_ONE_COLUMN = frozenset(map(chr, range(0x20, 0x7F))) | {"…"}


def parents_table_text(result: ListResult) -> str | None:
    """The table and its footer as rich prints them piped, or None where only rich can."""
    footer = listing_footer(result) + "\n"
    if not result.parents:
        return footer
    if result.by == "container":
        columns, right = CONTAINERS_COLUMNS, CONTAINERS_RIGHT
        rows = containers_rows(result)
    else:
        columns, right = parents_columns(result), RIGHT_JUSTIFIED
        with_container = len(columns) > len(PARENTS_COLUMNS)
        rows = [parents_row(result, g, with_container) for g in result.parents]
    cells = [list(columns), *rows]
    if not all(_ONE_COLUMN.issuperset(cell) for row in cells for cell in row):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if sum(widths) + 2 * (len(widths) - 1) > PIPE_WIDTH:
        return None  # rich would fold a cell
    lines = [_line(row, widths, columns, right) for row in cells]
    return "\n".join(lines) + "\n" + footer


def _line(
    row: list[str], widths: list[int], columns: tuple[str, ...], right: frozenset[str]
) -> str:
    # Two spaces between columns: each cell's padding of one, none at the edges.
    return "  ".join(
        cell.rjust(width) if title in right else cell.ljust(width)
        for cell, width, title in zip(row, widths, columns, strict=True)
    )
