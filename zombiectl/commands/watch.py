"""`zombiectl watch`: a live view of a process's children, or of the whole system.

$ zombiectl watch --pid 48211 --count 3 | cat
t=0.00s pid 48211 (leaky-server): children 6, zombies 4 (+0 new, -0 reaped)  states S:2 Z:4  zombie pids 48213 48214 48219 48220
t=1.00s pid 48211 (leaky-server): children 7, zombies 5 (+1 new, -0 reaped)  states S:2 Z:5  zombie pids 48213 48214 48219 48220 48231
t=2.00s pid 48211 (leaky-server): children 5, zombies 3 (+0 new, -2 reaped)  states S:2 Z:3  zombie pids 48219 48220 48231
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from zombiectl.commands.common import PID, console_for_stdout
from zombiectl.errors import EXIT_OK
from zombiectl.proc.table import require_process
from zombiectl.stdout import write
from zombiectl.watching.tracker import (
    Gone,
    Sample,
    Tracker,
    container_of,
    run_watch,
    sample_pid,
    sample_system,
)

if TYPE_CHECKING:
    from rich.console import Console


@click.command(
    "watch",
    epilog="""\b
Examples:
  zombiectl watch --pid 4242            live: 4242's children, zombies and how long each has been one
  zombiectl watch --pid 4242 --tree     all descendants, not only children
  zombiectl watch                       the whole system, grouped by parent
  zombiectl watch --once --json         one sample as JSON
  zombiectl watch --pid 4242 --json --interval 0.1 --count 50
""",
)
@click.option(
    "--pid", type=PID, default=None, help="Watch PID's children (default: the whole system)."
)
@click.option("--tree", is_flag=True, help="With --pid: all descendants, not only children.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    metavar="S",
    help="Seconds between samples (at least 0.05).",
)
@click.option(
    "--count", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N samples."
)
@click.option("--once", is_flag=True, help="One sample (same as --count 1).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sample, one per line.")
def command(
    pid: int | None, tree: bool, interval: float, count: int | None, once: bool, as_json: bool
) -> int:
    """Live view of zombies: PID's children (or descendants), or the whole system by parent.

    Ends on Ctrl-C, after --count samples, or when the watched PID exits.
    """
    if tree and pid is None:
        raise click.UsageError("--tree needs --pid")
    if once:
        count = 1
    if pid is not None:
        require_process(pid)
    tracker = Tracker(pid, time.monotonic(), container=None if pid is None else container_of(pid))
    take = _taker(tracker, pid, tree)

    console = console_for_stdout()
    live = console.is_terminal and not as_json
    try:
        if live:
            _watch_live(take, interval, count, console)
        else:
            emit = _json_emit if as_json else _plain_emit
            run_watch(take, emit, interval, count)
    except Gone:
        sys.stdout.flush()
        click.echo(f"zombiectl: pid {pid} exited; watch ends", err=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _taker(tracker: Tracker, pid: int | None, tree: bool) -> Callable[[float], Sample]:
    if pid is None:

        def take(now: float) -> Sample:
            procs, parents = sample_system()
            return tracker.update(procs, now, parents=parents)

    else:

        def take(now: float) -> Sample:
            procs, name = sample_pid(pid, tree, tracker.zombies)
            return tracker.update(procs, now, name=name)

    return take


def _plain_emit(sample: Sample) -> None:
    from zombiectl.render.watch import plain_line

    write(plain_line(sample) + "\n")


def _json_emit(sample: Sample) -> None:
    from zombiectl.render.watch import json_line

    write(json_line(sample) + "\n")


def _watch_live(
    take: Callable[[float], Sample], interval: float, count: int | None, console: Console
) -> None:
    from rich.live import Live

    from zombiectl.render.watch import live_view

    rows = max(5, console.size.height - 8)
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def emit(sample: Sample) -> None:
            live.update(live_view(sample, interval, rows), refresh=True)

        run_watch(take, emit, interval, count)
