"""Option types and helpers shared by the click commands.

One click type per kind of number, each a thin wrapper over `zombiectl.validate`, which
the click-free fast paths call too, so both accept and refuse the same text with the
same sentence. The range appears in `--help` (for example `[0.05<=x<=86400]`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from zombiectl import validate
from zombiectl.errors import Terminated

# The consoles live with the renderers; commands take them from here with the option types.
from zombiectl.ui.console import PIPE_WIDTH, console_for_stderr, console_for_stdout

__all__ = ["PIPE_WIDTH", "console_for_stderr", "console_for_stdout"]


class PidType(click.ParamType):
    """A process id: ASCII digits, from 1 up. Existence is checked by the command (exit 3)."""

    name = "PID"

    def __repr__(self) -> str:
        return "PID"  # stable, like click's own types (test ids, debugging)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return validate.pid(value)
        except validate.InvalidValue as err:
            self.fail(str(err), param, ctx)


PID = PidType()


class Seconds(click.FloatRange):
    """A finite number of seconds in [minimum, maximum] (one day unless said otherwise)."""

    name = "S"  # the metavar where an option gives none

    def __init__(self, minimum: float = 0.0, maximum: float = validate.DAY) -> None:
        super().__init__(minimum, maximum)
        self.bounds = (minimum, maximum)  # click's min and max are typed as optional

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            return validate.seconds(value, minimum=self.bounds[0], maximum=self.bounds[1])
        except validate.InvalidValue as err:
            self.fail(str(err), param, ctx)

    def _describe_range(self) -> str:
        return f"{self.min:g}<=x<={self.max:g}"  # "0.05<=x<=86400", not "0.05<=x<=86400.0"


class Count(click.IntRange):
    """A whole number in [minimum, maximum], from ASCII digits."""

    name = "N"

    def __init__(self, minimum: int, maximum: int) -> None:
        super().__init__(minimum, maximum)
        self.bounds = (minimum, maximum)  # click's min and max are typed as optional

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return validate.whole(value, minimum=self.bounds[0], maximum=self.bounds[1])
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
