"""`zombiectl watch`'s live view on a terminal, drawn with rich (the plain and JSON lines
are in `watching.lines`)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.ui.cells import format_pids
from zombiectl.ui.safe import data
from zombiectl.watching.lines import duration, exit_line, rate_text, states_text, title, what
from zombiectl.watching.tracker import Exited, Sample

SPARKS = "▁▂▃▄▅▆▇█"
ROWS = 15
SPARK_WIDTH = 60
# Fixed widths, so that columns do not shift from one frame to the next.
PID_WIDTH = 8
NAME_WIDTH = 16
AGE_WIDTH = 16


def sparkline(values: tuple[int, ...] | list[int], width: int = SPARK_WIDTH) -> str:
    values = list(values)[-width:]
    if not values:
        return ""
    top = max(values)
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, v * (len(SPARKS) - 1) // top)] for v in values)


def zombie_age(s: Sample, pid: int) -> str:
    """How long pid has been a zombie. Seen since `watch` started, the time seen is a lower
    bound (≥1.5s) and the process's own age an upper bound (≤30m); one that turned into a
    zombie while watched was seen within a sample of it happening."""
    seen = _age(s.zombie_age[pid])
    if pid not in s.preexisting:
        return seen
    upper = s.zombie_max_age.get(pid)
    return f"≥{seen}" + ("" if upper is None else f" (≤{duration(upper)})")


def oldest_age(s: Sample, pids: list[int]) -> str:
    """The age of a parent's oldest zombie, with the same bounds as `zombie_age`."""
    known = [pid for pid in pids if pid in s.zombie_age]
    if not known:
        return "?"
    oldest = max(known, key=lambda pid: (s.zombie_max_age.get(pid, 0.0), s.zombie_age[pid]))
    return zombie_age(s, oldest)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


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
