"""Untrusted text as a rich renderable: the one way data reaches a rich table or line.

A `str` handed to a rich Table cell or to `Console.print` is parsed as markup (`[/]`
raises MarkupError, `[bold red]hi` shows as `hi`) and as emoji codes (`:zombie:`);
a `Text` is not. `data()` wraps text that holds anything read from the system (names,
users, reasons that quote a name, paths) after `display()` has escaped its control
characters.
"""

from __future__ import annotations

from rich.text import Text

from zombiectl.untrusted import display


def data(text: str, style: str = "") -> Text:
    """`text` shown as it is, one line, no markup, control characters escaped."""
    return Text(display(text), style=style)
