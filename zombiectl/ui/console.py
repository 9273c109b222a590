"""The rich consoles every command draws on.

Click-free, and rich is imported only when a console is made: `list`'s fast path and
`run`'s click command import this module without drawing anything.
"""

from __future__ import annotations

import os

from zombiectl.stdout import reader_left

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from rich.console import Console

# Piped output goes to programs and pagers, which wrap (or not) as they like: a table
# there is as wide as its content, never folded at 80 columns in mid-word.
PIPE_WIDTH = 1000


def draws_plain() -> bool:
    """True when rich would draw stdout as a pipe: not a terminal, and no colour forced.

    Asked before making a console, so that output that is not drawn imports no rich."""
    environ = os.environ
    if environ.get("TTY_COMPATIBLE") == "1" or environ.get("FORCE_COLOR"):
        return False
    try:
        return not os.isatty(1)
    except OSError:
        return False


def console_for_stdout() -> Console:
    """A rich Console on stdout: colour and live views only on a terminal; NO_COLOR respected.

    Piped, it is PIPE_WIDTH columns wide whatever COLUMNS says, so no table row wraps.

    When the reader of a pipe leaves (`zombiectl list | head -1`), rich would exit 1 as
    if something had failed; this console exits as a process killed by SIGPIPE would
    be reported by a shell (141), as `ps` does, and says nothing.
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            reader_left()

    console = _Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def console_for_stderr() -> Console:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console
