"""`zombiectl list`: one scan of the process table, zombies grouped by parent.

$ zombiectl list
PARENT  NAME    USER  ZOMBIES  ZOMBIE PIDS
 29774  python  root        3  29805 29810 29811
 29709  python  root        2  29715 29716
2 parents leak 5 zombies among 103 processes (scan 2.0 ms)

Well-formed command lines never reach this module: `zombiectl.fastpath` parses them and
calls `list_command` without importing click. This command gives `--help` and the
one-line errors, and calls the same function when it is reached. Both read the options
from one declaration, `zombiectl.listing.output.OPTIONS`.
"""

from __future__ import annotations

from typing import Any

import click

from zombiectl.errors import BadUsage
from zombiectl.listing.output import OPTIONS, list_command, resolve_format
from zombiectl.ui.options import click_options


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
@click_options(OPTIONS)
def command(**params: Any) -> int:
    """One scan of the process table: zombies grouped by parent, biggest leaker first."""
    try:
        resolve_format(params["fmt"], params["as_json"], params["textfile"])
    except BadUsage as err:
        raise click.UsageError(str(err)) from None
    return list_command(**params)  # the fast path's function, with click's parameters
