"""`zombiectl explain [STRATEGY]`: what a zombie is, and why each demo makes or prevents them.

$ zombiectl explain interleaved | head -4
interleaved (S4/S5): a few starts with a gap between them; --gap 0: back to back

The code (it runs in the lab parent; zombiectl demo interleaved runs it):
# zombiectl.demo.strategies.interleaved.lab
"""

from __future__ import annotations

import click

from zombiectl.explain.model import explain_strategy, overview_rows
from zombiectl.explain.render import render_overview, render_strategy
from zombiectl.ui.options import console_for_stdout


@click.command(
    "explain",
    epilog="""\b
Examples:
  zombiectl explain                 what a zombie is; every strategy in a table
  zombiectl explain interleaved     the post's open question: why sleep() matters
  zombiectl explain c               the C program, and the fix
""",
)
@click.argument("strategy", required=False, metavar="[STRATEGY]")
def command(strategy: str | None) -> int:
    """What a zombie is, and how each demo strategy makes or prevents them (its real code)."""
    console = console_for_stdout()
    if strategy is None or strategy == "all":
        render_overview(console, overview_rows())
    else:
        render_strategy(console, explain_strategy(strategy))
    return 0
