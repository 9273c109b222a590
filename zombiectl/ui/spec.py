"""Each command's options, declared once, as data.

The click command is built from the declarations (`zombiectl.ui.options.click_options`),
and so is `parse`, the parser of the command lines that skip click (`zombiectl.fastpath`:
importing click costs `list` and `run` about 40 ms). Both check values with the same
validator (`zombiectl.validate`), so they accept and refuse the same text.

`parse` understands only well-formed lines and returns exactly the parameters click
would pass; on anything else (`--help`, a bad value, an unknown option) it returns None
and click, which reads the same declarations, says why. Standard library only.

    >>> parse(["--count=3", "-v"], (Option("--count", kind="count", bounds=(0, 9)),
    ...                              Option("--verbose", "-v")))
    {'count': 3, 'verbose': True}
"""

from __future__ import annotations

from zombiectl import validate

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

KINDS = ("flag", "pid", "count", "seconds", "choice", "text")


class Option:
    """One option: its flags (the first long one names it), the kind of value it takes
    and what `--help` says of it."""

    __slots__ = ("bounds", "choices", "default", "dest", "flags", "help", "kind", "metavar")

    def __init__(
        self,
        *flags: str,
        dest: str | None = None,
        kind: str = "flag",
        default: Any = None,
        bounds: tuple[Any, Any] | None = None,
        choices: tuple[str, ...] = (),
        metavar: str | None = None,
        help: str = "",
    ) -> None:
        assert kind in KINDS, kind
        self.flags = flags
        self.dest = dest or flags[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = False if kind == "flag" else default
        self.bounds = bounds
        self.choices = choices
        self.metavar = metavar
        self.help = help

    def convert(self, text: str) -> Any:
        """The value of `text`, or None when click must say what is wrong with it."""
        try:
            if self.kind == "pid":
                return validate.pid(text)
            if self.kind == "count" and self.bounds is not None:
                return validate.whole(text, minimum=self.bounds[0], maximum=self.bounds[1])
            if self.kind == "seconds" and self.bounds is not None:
                return validate.seconds(text, minimum=self.bounds[0], maximum=self.bounds[1])
        except validate.InvalidValue:
            return None
        if self.kind == "choice":
            return text if text in self.choices else None
        # A path: one that looks like an option is more likely a mistake click should name.
        return text if text and not text.startswith("-") else None


def parse(
    args: list[str], options: tuple[Option, ...], rest: str | None = None
) -> dict[str, Any] | None:
    """The parameters of a well-formed command line, or None to leave it to click.

    With `rest`, options end at `--` or at the first word that is not an option, and the
    words left are `rest` (`run -- CMD...`, as for tini); without, every word is an option.
    """
    by_flag = {flag: o for o in options for flag in o.flags}
    params: dict[str, Any] = {o.dest: o.default for o in options}
    i = 0
    while i < len(args):
        arg = args[i]
        if rest is not None and (arg == "--" or not arg.startswith("-") or arg == "-"):
            i += arg == "--"
            break
        name, eq, text = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        option = by_flag.get(name)
        if option is None or (eq and option.kind == "flag"):
            return None
        if option.kind == "flag":
            params[option.dest] = True
        else:
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                text = args[i]
            value = option.convert(text)
            if value is None:
                return None
            params[option.dest] = value
        i += 1
    if rest is not None:
        params[rest] = tuple(args[i:])
    return params
