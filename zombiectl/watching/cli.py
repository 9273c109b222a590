"""`zombiectl watch`: a live view of a process's children, or of the whole system.

$ zombiectl watch --pid 18974 --interval 0.5 | cut -c1-150
t=0.03s pid 18974 (python): children 15, zombies 15 (+0 new, -0 reaped)  leak 0.0/min  states Z:15  zombie pids 18992 18991 18990 18987 18986 1898
t=0.53s pid 18974 (python): children 25, zombies 25 (+10 new, -0 reaped)  leak 1199.6/min, pid_max (32768) reached in ~27m  states Z:25  zombie pid
t=1.03s pid 18974 (python): children 35, zombies 35 (+10 new, -0 reaped)  leak 1199.9/min, pid_max (32768) reached in ~27m  states Z:35  zombie pid
pid 18974 exited (it was python); its 40 zombies: 40 adopted by pid 1 (process_api)
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from zombiectl.errors import EXIT_OK, Interrupted, signum_of
from zombiectl.proc.table import require_process
from zombiectl.stdout import write
from zombiectl.ui.console import draws_plain
from zombiectl.ui.options import PID, Count, Seconds, console_for_stdout, sigterm_raises
from zombiectl.watching.lines import exit_line, json_line, plain_line
from zombiectl.watching.tracker import (
    Exited,
    Gone,
    Sample,
    Tracker,
    after_exit,
    container_of,
    run_watch,
    sample_pid,
    sample_system,
)

if TYPE_CHECKING:
    from rich.console import Console

SAMPLES_MAX = 1_000_000_000


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
    type=Seconds(0.05),
    default=1.0,
    show_default=True,
    metavar="S",
    help="Seconds between samples (at least 0.05, at most a day).",
)
@click.option(
    "--count",
    type=Count(1, SAMPLES_MAX),
    default=None,
    metavar="N",
    help="Stop after N samples.",
)
@click.option("--once", is_flag=True, help="One sample (same as --count 1).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sample, one per line.")
def command(
    pid: int | None, tree: bool, interval: float, count: int | None, once: bool, as_json: bool
) -> int:
    """Live view of zombies: PID's children (or descendants), or the whole system by parent.

    Ends on Ctrl-C (exit 0), after --count samples, or when the watched PID exits;
    SIGTERM ends it as terminated (143), the live view restored first.
    """
    if tree and pid is None:
        raise click.UsageError("--tree needs --pid")
    if once:
        count = 1
    if pid is not None:
        require_process(pid)
    tracker = Tracker(
        pid,
        time.monotonic(),
        tree=tree,
        container=None if pid is None else container_of(pid),
    )
    take = _taker(tracker, pid, tree)

    # JSON and piped lines are not drawn: no console, so no rich, for them.
    console = None if as_json or draws_plain() else console_for_stdout()
    live = console is not None and console.is_terminal
    try:
        with sigterm_raises():
            if console is not None and live:
                _watch_live(take, interval, count, console, lambda: _exited(tracker, pid))
            else:
                emit = _json_emit if as_json else _plain_emit
                run_watch(take, emit, interval, count)
    except Gone:
        _say_exited(_exited(tracker, pid), None if live else as_json)
    except KeyboardInterrupt as interrupt:
        if signum_of(interrupt) == signal.SIGTERM:
            raise Interrupted("terminated by SIGTERM", signal.SIGTERM) from None
        # Ctrl-C is how a live view is meant to end: exit 0.
    return EXIT_OK


def _exited(tracker: Tracker, pid: int | None) -> Exited:
    assert pid is not None
    return after_exit(pid, tracker.name, tracker.zombies)


def _say_exited(exited: Exited, as_json: bool | None) -> None:
    """The last word when the watched process exits (the live view has shown it already):
    a plain line on stdout unless JSON, and on stderr in any case."""
    sys.stdout.flush()
    if as_json is False:
        write(exit_line(exited) + "\n")
    click.echo(f"zombiectl: {exit_line(exited)}; watch ends", err=True)


def _taker(tracker: Tracker, pid: int | None, tree: bool) -> Callable[[float], Sample]:
    from zombiectl.proc.age import since_start
    from zombiectl.proc.limits import headroom

    if pid is None:

        def take(now: float) -> Sample:
            procs, parents = sample_system()
            born = since_start(tracker.unknown_ages(procs))
            return tracker.update(procs, now, parents=parents, ages=born, headroom=headroom(None))

    else:

        def take(now: float) -> Sample:
            procs, name = sample_pid(pid, tree, tracker.zombies)
            born = since_start(tracker.unknown_ages(procs))
            limit = headroom(pid)
            return tracker.update(procs, now, name=name, ages=born, headroom=limit)

    return take


def _plain_emit(sample: Sample) -> None:
    write(plain_line(sample) + "\n")


def _json_emit(sample: Sample) -> None:
    write(json_line(sample) + "\n")


def _watch_live(
    take: Callable[[float], Sample],
    interval: float,
    count: int | None,
    console: Console,
    on_gone: Callable[[], Exited],
) -> None:
    """The live view; when the watched process exits, its final frame says so, then
    Gone goes on up."""
    # Here, not at the top: rich is imported only when a terminal is drawn on.
    from rich.live import Live

    from zombiectl.watching.render import exit_view, live_view

    rows = max(5, console.size.height - 10)
    last: list[Sample] = []
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def emit(sample: Sample) -> None:
            last[:] = [sample]
            live.update(live_view(sample, interval, rows), refresh=True)

        try:
            run_watch(take, emit, interval, count)
        except Gone:
            exited = on_gone()
            final = live_view(last[0], interval, rows) if last else None
            live.update(exit_view(exited, final), refresh=True)
            raise
