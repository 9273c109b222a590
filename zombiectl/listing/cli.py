"""`zombiectl list`: one scan of the process table, zombies grouped by parent.

$ zombiectl list
PARENT  NAME    USER  ZOMBIES  ZOMBIE PIDS
 29774  python  root        3  29805 29810 29811
 29709  python  root        2  29715 29716
2 parents leak 5 zombies among 103 processes (scan 2.0 ms)

Well-formed command lines never reach this module: `zombiectl.fastpath` parses them and
calls `list_command` without importing click. This command gives `--help` and the
one-line errors, and calls the same function when it is reached.
"""

from __future__ import annotations

from typing import Any

import click

from zombiectl.errors import BadUsage
from zombiectl.listing.output import BY, DEFAULT_TOP, FORMATS, list_command, resolve_format
from zombiectl.ui.options import PID, Count
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
def command(**params: Any) -> int:
    """One scan of the process table: zombies grouped by parent, biggest leaker first."""
    try:
        resolve_format(params["fmt"], params["as_json"], params["textfile"])
    except BadUsage as err:
        raise click.UsageError(str(err)) from None
    return list_command(**params)  # the fast path's function, with click's parameters
