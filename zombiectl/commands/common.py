"""Option types and helpers shared by the click commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

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


def console_for_stdout() -> Console:
    """A rich Console on stdout: colour and live views only on a terminal; NO_COLOR respected."""
    from rich.console import Console

    return Console(highlight=False)


def console_for_stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)
