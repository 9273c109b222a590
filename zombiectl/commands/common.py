"""Option types and helpers shared by the click commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from zombiectl.stdout import reader_left

if TYPE_CHECKING:
    from rich.console import Console


class PidType(click.ParamType):
    """A process id: a whole number from 1 up. Existence is checked by the command (exit 3)."""

    name = "PID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                self.fail(f"{value!r} is not a process id (a whole number from 1 up)", param, ctx)
            n = int(text)
        if n < 1:
            self.fail(f"{value!r} is not a process id (a whole number from 1 up)", param, ctx)
        return n


PID = PidType()


# Piped output goes to programs and pagers, which wrap (or not) as they like: a table
# there is as wide as its content, never folded at 80 columns in mid-word.
PIPE_WIDTH = 1000


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
