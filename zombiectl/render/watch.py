"""Renderers for `zombiectl watch`: a rich live view, plain lines, JSON lines."""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.render.safe import data
from zombiectl.render.tables import format_pids
from zombiectl.untrusted import display
from zombiectl.watching.tracker import Sample

SPARKS = "▁▂▃▄▅▆▇█"
ROWS = 15


def sparkline(values: tuple[int, ...] | list[int], width: int = 60) -> str:
    values = list(values)[-width:]
    if not values:
        return ""
    top = max(values)
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, v * (len(SPARKS) - 1) // top)] for v in values)


def states_text(states: dict[str, int]) -> str:
    return " ".join(f"{s}:{n}" for s, n in states.items()) or "-"


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _title(s: Sample) -> str:
    """Display text: the watched process's name is escaped, so a plain line stays one line."""
    if s.pid is None:
        return "whole system"
    return f"pid {s.pid} ({display(s.name)})" if s.name else f"pid {s.pid}"


def plain_line(s: Sample) -> str:
    what = "processes" if s.pid is None else "children"
    line = (
        f"t={s.t:.2f}s {_title(s)}: {what} {s.children}, zombies {s.zombies}"
        f" (+{len(s.new_zombies)} new, -{len(s.reaped)} reaped)  states {states_text(s.states)}"
    )
    if s.pid is not None and s.zombie_pids:
        line += f"  zombie pids {format_pids(s.zombie_pids)}"
    return line


def json_line(s: Sample) -> str:
    return json.dumps(s.as_dict())


def live_view(s: Sample, interval: float, rows: int = ROWS) -> RenderableType:
    what = "processes" if s.pid is None else "children"
    head = Text.assemble(
        ("watching ", "dim"),
        (_title(s), "bold"),
        (f"   t={s.t:.1f}s   every {interval:g}s\n", "dim"),
        (f"{what} {s.children}   ", ""),
        (f"zombies {s.zombies}", "bold red" if s.zombies else "green"),
        (f"   new +{len(s.new_zombies)}", "red" if s.new_zombies else "dim"),
        (f"   reaped -{len(s.reaped)}", "green" if s.reaped else "dim"),
        (f"   states {states_text(s.states)}", "dim"),
    )
    history = Text.assemble(("zombies over time ", "dim"), (sparkline(s.history), "red"))
    table = _parents_table(s, rows) if s.pid is None else _zombies_table(s, rows)
    parts: list[RenderableType] = [head, history]
    if table is not None:
        parts.append(table)
    return Group(*parts)


def _zombies_table(s: Sample, rows: int) -> Table | None:
    if not s.zombie_pids:
        return None
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ZOMBIE", justify="right")
    table.add_column("NAME")
    table.add_column("PARENT", justify="right")
    table.add_column("SEEN AS ZOMBIE", justify="right")
    new = set(s.new_zombies)
    # Longest-lived first: those are the ones nobody is reaping.
    order = sorted(s.zombie_pids, key=lambda pid: (-s.zombie_age[pid], pid))
    for pid in order[:rows]:
        info = s.zombie_info.get(pid)
        table.add_row(
            str(pid),
            data(info.name) if info else "?",
            str(info.ppid) if info else "?",
            _age(s.zombie_age[pid]),
            style="red" if pid in new else None,
        )
    if len(order) > rows:
        table.add_row("…", f"{len(order) - rows} more", "", "")
    return table


def _parents_table(s: Sample, rows: int) -> Table | None:
    if not s.parents:
        return None
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("PARENT", justify="right")
    table.add_column("NAME")
    table.add_column("USER")
    table.add_column("ZOMBIES", justify="right", style="bold red")
    table.add_column("OLDEST", justify="right")
    table.add_column("ZOMBIE PIDS")
    for g in s.parents[:rows]:
        oldest = max(s.zombie_age.get(pid, 0.0) for pid in g.zombie_pids)
        table.add_row(
            str(g.pid),
            data(g.name),
            data(g.user),
            str(g.zombies),
            _age(oldest),
            format_pids(g.zombie_pids),
        )
    if len(s.parents) > rows:
        table.add_row("…", f"{len(s.parents) - rows} more parents", "", "", "", "")
    return table
