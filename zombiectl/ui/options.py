"""Option types and helpers shared by the click commands.

One click type per kind of number, each a thin wrapper over `zombiectl.validate`, which
the click-free fast paths call too, so both accept and refuse the same text with the
same sentence. The range appears in `--help` (for example `[0.05<=x<=86400]`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from zombiectl import validate
from zombiectl.errors import Terminated

# Commands take the consoles from here with the option types: one import for the click side.
from zombiectl.ui.console import PIPE_WIDTH, console_for_stderr, console_for_stdout
from zombiectl.ui.spec import Option

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
F = TypeVar("F", bound=Callable[..., Any])


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


def click_type(option: Option) -> click.ParamType | None:
    """The click type that checks an option's value as the fast path does."""
    if option.kind == "pid":
        return PID
    if option.kind == "count" and option.bounds is not None:
        return Count(*option.bounds)
    if option.kind == "seconds" and option.bounds is not None:
        return Seconds(*option.bounds)
    if option.kind == "choice":
        return click.Choice(option.choices)
    return None


def click_options(options: tuple[Option, ...]) -> Callable[[F], F]:
    """Decorate a click command with these declared options, in this order."""

    def decorate(f: F) -> F:
        for o in reversed(options):
            f = click.option(
                *o.flags,
                o.dest,
                is_flag=o.kind == "flag",
                type=click_type(o),
                default=o.default,
                show_default=o.kind != "flag" and o.default is not None,
                metavar=o.metavar,
                help=o.help,
            )(f)
        return f

    return decorate


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
