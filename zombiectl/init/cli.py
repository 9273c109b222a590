"""`zombiectl run`: run CMD under a reaping init, like tini.

$ zombiectl run -v --kill-descendants --grace 1 -- sh -c './stubborn & sleep 30 & exit 0'
zombiectl run: started sh as pid 296276
zombiectl run: pid 296276 (sh) exited with status 0
zombiectl run: sending SIGTERM to 3 descendant(s) still running
zombiectl run: reaped orphan 296278, which was killed by SIGTERM
zombiectl run: sending SIGKILL to 2 descendant(s) after 1 s
zombiectl run: reaped orphan 296277, which was killed by SIGKILL
zombiectl run: reaped orphan 296279, which was killed by SIGKILL

Well-formed command lines never reach this module: `zombiectl.fastpath` parses them and
calls `run_command` without importing click. This command gives `--help` and the
one-line errors, and calls the same function when it is reached. Both read the options
from one declaration, `zombiectl.init.reaper.OPTIONS`.
"""

from __future__ import annotations

from typing import Any

import click

from zombiectl.init.reaper import OPTIONS, run_command
from zombiectl.ui.options import click_options


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False},
    epilog="""\b
Examples:
  zombiectl run -- ./server --port 8080        reap orphans, forward signals, pass the exit status
  zombiectl run --group -- sh -c 'a & b; wait' signals go to CMD's whole process group
  zombiectl run --kill-descendants --grace 3 -- make test
                                               TERM, then KILL after 3 s, what CMD left running
  ENTRYPOINT ["zombiectl", "run", "--"]        as a container's init (PID 1)

Exit status: CMD's own; 128+N when signal N killed it; 127 when CMD is not
found, 126 when it cannot be run; 5 when this is not Linux (and not PID 1).
""",
)
@click_options(OPTIONS)
@click.argument("cmd", nargs=-1, required=True, metavar="-- CMD [ARG]...")
def command(**params: Any) -> int:
    """Run CMD under a reaping init, like tini: it reaps every orphan at once,
    forwards signals to CMD and exits with CMD's status."""
    return run_command(**params)  # the fast path's function, with click's parameters
