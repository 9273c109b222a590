"""Option types and helpers shared by the click commands.

One click type per kind of number, each a thin wrapper over `zombiectl.validate`, which
the click-free fast paths call too, so both accept and refuse the same text with the
same sentence. The range appears in `--help` (for example `[0.05<=x<=86400]`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from zombiectl import validate
from zombiectl.errors import Terminated
from zombiectl.stdout import reader_left

if TYPE_CHECKING:
    from rich.console import Console


class PidType(click.ParamType):
    """A process id: ASCII digits, from 1 up. Existence is checked by the command (exit 3)."""

    name = "PID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return validate.pid(value)
        except validate.InvalidValue as err:
            self.fail(str(err), param, ctx)


PID = PidType()


# Piped output goes to programs and pagers, which wrap (or not) as they like: a table
# there is as wide as its content, never folded at 80 columns in mid-word.
PIPE_WIDTH = 1000


class Seconds(click.FloatRange):
    """A finite number of seconds in [minimum, maximum] (one day unless said otherwise)."""

    name = "S"  # the metavar where an option gives none

    def __init__(self, minimum: float = 0.0, maximum: float = validate.DAY) -> None:
        super().__init__(minimum, maximum)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return validate.seconds(value, minimum=float(self.min), maximum=float(self.max))  # type: ignore[arg-type]
        except validate.InvalidValue as err:
            self.fail(str(err), param, ctx)

    def _describe_range(self) -> str:
        return f"{self.min:g}<=x<={self.max:g}"  # "0.05<=x<=86400", not "0.05<=x<=86400.0"


class Count(click.IntRange):
    """A whole number in [minimum, maximum], from ASCII digits."""

    name = "N"

    def __init__(self, minimum: int, maximum: int) -> None:
        super().__init__(minimum, maximum)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return validate.whole(value, minimum=int(self.min), maximum=int(self.max))  # type: ignore[arg-type]
        except validate.InvalidValue as err:
            self.fail(str(err), param, ctx)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (a KeyboardInterrupt), so the clean-up
    written for Ctrl-C runs for it too; the command then exits 143 rather than 130."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: SIGTERM keeps its action
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
