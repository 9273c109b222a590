"""rich renderables for the process table: `list`'s table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.listing.zombies import ListResult
from zombiectl.proc.containers import Container
from zombiectl.render.safe import data
from zombiectl.untrusted import display

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
    table = parents_table()
    # The column appears when some parent is in a container: on a host without any,
    # it would only repeat "-".
    with_containers = any(c is not None for c in result.containers.values())
    if with_containers:
        table.add_column("CONTAINER", overflow="fold")
    for g in result.parents:
        row: list[RenderableType] = [
            str(g.pid),
            data(g.name),
            data(g.user),
            str(g.zombies),
            format_pids(g.zombie_pids),
        ]
        if with_containers:
            row.append(container_cell(result.container_of(g.pid), g.pid in result.inits))
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
