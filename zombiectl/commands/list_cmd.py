"""`zombiectl list`: one scan of the process table, zombies grouped by parent.

$ zombiectl list
 PARENT  NAME          USER  ZOMBIES  ZOMBIE PIDS
  48211  leaky-server  www        17  48213 48214 48219 48220 48231 …
  50102  python3       ann         1  50110
2 parents leak 18 zombies among 212 processes (scan 2.1 ms)
"""

from __future__ import annotations

import click

from zombiectl.commands.common import PID, Count, console_for_stdout
from zombiectl.commands.list_fast import BY, FORMATS, emit_machine_readable, resolve_format
from zombiectl.errors import EXIT_CONDITION, BadUsage
from zombiectl.render.text import DEFAULT_TOP
from zombiectl.validate import PID_MAX_LIMIT


@click.command(
    "list",
    epilog="""\b
Examples:
  zombiectl list                       who leaks zombies, biggest leaker first
  zombiectl list --json                the same as one JSON object
  zombiectl list --by container         one row per container: which one leaks
  zombiectl list --max 50              exit 1 when more than 50 zombies exist
  zombiectl list --format prometheus   Prometheus text exposition on stdout
  zombiectl list --textfile /var/lib/prometheus/node-exporter/zombiectl.prom
                                       the same, written atomically for
                                       node_exporter's textfile collector
""",
)
@click.option("--pid", type=PID, default=None, help="Only zombies whose parent is PID.")
@click.option(
    "--max",
    "max_zombies",
    type=Count(0, PID_MAX_LIMIT),
    default=None,
    metavar="N",
    help="Exit 1 when more than N zombies are found (a monitoring check).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. [default: table; prometheus with --textfile]",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--top",
    type=Count(0, PID_MAX_LIMIT),
    default=DEFAULT_TOP,
    show_default=True,
    metavar="N",
    help="Prometheus: how many parents get a zombiectl_zombies_by_parent series.",
)
@click.option(
    "--textfile",
    metavar="PATH",
    default=None,
    help="Write the Prometheus format to PATH (a *.prom file) atomically, for "
    "node_exporter's textfile collector, instead of to stdout.",
)
@click.option(
    "--by",
    type=click.Choice(BY),
    default="parent",
    show_default=True,
    help="One row per parent, or per container (its zombies and its worst parent).",
)
def command(
    pid: int | None,
    max_zombies: int | None,
    fmt: str | None,
    as_json: bool,
    top: int,
    textfile: str | None,
    by: str,
) -> int:
    """One scan of the process table: zombies grouped by parent, biggest leaker first."""
    try:
        fmt = resolve_format(fmt, as_json, textfile)
    except BadUsage as err:
        raise click.UsageError(str(err)) from None
    if fmt != "table":
        return emit_machine_readable(fmt, pid, max_zombies, top, textfile, by)
    from zombiectl.listing.zombies import exceeds, list_zombies
    from zombiectl.render.tables import listing_table

    result = list_zombies(pid, by=by)
    console_for_stdout().print(listing_table(result))
    return EXIT_CONDITION if exceeds(result, max_zombies) else 0
