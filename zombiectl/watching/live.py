"""`zombiectl watch`'s live view on a terminal, drawn with rich."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.ui.cells import format_pids
from zombiectl.ui.safe import data
from zombiectl.watching.render import (
    SPARK_WIDTH,
    exit_line,
    oldest_age,
    rate_text,
    sparkline,
    states_text,
    title,
    what,
    zombie_age,
)
from zombiectl.watching.tracker import Exited, Sample

ROWS = 15
# Fixed widths, so that columns do not shift from one frame to the next.
PID_WIDTH = 8
NAME_WIDTH = 16
AGE_WIDTH = 16


def exit_view(e: Exited, last: RenderableType | None) -> RenderableType:
    """The final frame: the last sample, then what became of the watched process."""
    text = Text(exit_line(e), style="bold")
    return Group(last, text) if last is not None else text


def history_text(s: Sample) -> Text:
    """The sparkline with its scale: the top bar stands for the highest count shown."""
    shown = list(s.history)[-SPARK_WIDTH:]
    top = max(shown, default=0)
    return Text.assemble(
        (f"zombies, last {len(shown)} samples ", "dim"),
        ("0 ", "dim"),
        (sparkline(shown).ljust(SPARK_WIDTH), "red"),
        (f" {top}", "dim"),
    )


def live_view(s: Sample, interval: float, rows: int = ROWS) -> RenderableType:
    doing = what(s)
    head = Text.assemble(
        ("watching ", "dim"),
        (title(s), "bold"),
        (f"   t={s.t:.1f}s   every {interval:g}s\n", "dim"),
        (f"{doing} {s.children}   ", ""),
        (f"zombies {s.zombies}", "bold red" if s.zombies else "green"),
        (f"   new +{len(s.new_zombies)}", "red" if s.new_zombies else "dim"),
        (f"   reaped -{len(s.reaped)}", "green" if s.reaped else "dim"),
        (f"   states {states_text(s.states)}", "dim"),
        ("\n", ""),
        (rate_text(s), "red" if s.rate_per_min > 0 else "dim"),
    )
    history = history_text(s)
    table = _parents_table(s, rows) if s.pid is None else _zombies_table(s, rows)
    parts: list[RenderableType] = [head, history]
    if table is not None:
        parts.append(table)
    return Group(*parts)


def _zombies_table(s: Sample, rows: int) -> Table | None:
    if not s.zombie_pids:
        return None
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ZOMBIE", justify="right", width=PID_WIDTH)
    table.add_column("NAME", width=NAME_WIDTH, no_wrap=True, overflow="ellipsis")
    table.add_column("PARENT", justify="right", width=PID_WIDTH)
    table.add_column("ZOMBIE FOR", justify="right", width=AGE_WIDTH, no_wrap=True)
    new = set(s.new_zombies)
    # Newest first: a leak shows at the top; the oldest are summed up below.
    order = s.newest_first()
    for pid in order[:rows]:
        info = s.zombie_info.get(pid)
        table.add_row(
            str(pid),
            data(info.name) if info else "?",
            str(info.ppid) if info else "?",
            zombie_age(s, pid),
            style="red" if pid in new else None,
        )
    if len(order) > rows:
        table.add_row("…", f"{len(order) - rows} more", "", "")
    return table


def _parents_table(s: Sample, rows: int) -> Table | None:
    if not s.parents:
        return None
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("PARENT", justify="right", width=PID_WIDTH)
    table.add_column("NAME", width=NAME_WIDTH, no_wrap=True, overflow="ellipsis")
    table.add_column("USER", width=10, no_wrap=True, overflow="ellipsis")
    table.add_column("ZOMBIES", justify="right", style="bold red", width=8)
    table.add_column("OLDEST", justify="right", width=AGE_WIDTH, no_wrap=True)
    table.add_column("ZOMBIE PIDS", no_wrap=True, overflow="ellipsis")
    for g in s.parents[:rows]:
        table.add_row(
            str(g.pid),
            data(g.name),
            data(g.user),
            str(g.zombies),
            oldest_age(s, g.zombie_pids),
            format_pids(g.zombie_pids),
        )
    if len(s.parents) > rows:
        table.add_row("…", f"{len(s.parents) - rows} more parents", "", "", "", "")
    return table
