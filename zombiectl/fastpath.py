"""The command lines that skip click: `--version`, `run` and `list`.

Their start-up time is part of what they are for: `run` is an init that must start about
as fast as a bare interpreter, and monitoring checks and scripts call `list` often on big
tables; importing click would cost each about 40 ms. So they are parsed here, from the
same declarations their click commands are built from (`init.reaper.OPTIONS`,
`listing.output.OPTIONS`; see `zombiectl.ui.spec`), into exactly the parameters click
would pass. Anything else (`--help`, a bad value, a conflict) returns None and click
takes over, so every usage error comes from one place. The command then runs the same
function, whichever way it was parsed.

Standard library only: this module imports neither click, rich nor psutil.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any


def dispatch(args: list[str]) -> int | None:
    """The exit code of a command run here, or None when click must handle the line."""
    if args == ["--version"]:  # before any other import: nothing else to pay for
        from zombiectl import __version__
        from zombiectl.stdout import write

        write(f"zombiectl {__version__}\n")
        return 0
    from zombiectl.errors import EXIT_INTERRUPTED, ZombiectlError, report, report_error

    try:
        return _run(args)
    except ZombiectlError as err:
        return report_error(err)
    except KeyboardInterrupt:
        report("zombiectl: interrupted")
        return EXIT_INTERRUPTED


def _run(args: list[str]) -> int | None:
    if args[:1] == ["list"]:
        params = parse_list(args[1:])
        if params is not None:
            from zombiectl.listing.output import list_command

            return list_command(**params)
    if args[:1] == ["run"]:
        params = parse_run(args[1:])
        if params is not None:
            from zombiectl.init.reaper import run_command

            return run_command(**params)
    return None


def parse_list(args: list[str]) -> dict[str, Any] | None:
    """`list`'s click parameters, or None to defer to click."""
    from zombiectl.errors import BadUsage
    from zombiectl.listing.output import OPTIONS, resolve_format
    from zombiectl.ui.spec import parse

    params = parse(args, OPTIONS)
    if params is None:
        return None
    try:
        resolve_format(params["fmt"], params["as_json"], params["textfile"])
    except BadUsage:
        return None  # click reports the conflict, in its usage-error style
    return params


def parse_run(args: list[str]) -> dict[str, Any] | None:
    """`run`'s click parameters, or None to defer to click.

    Options end at `--` or at the first word that is not an option (CMD), as for tini.
    """
    from zombiectl.init.reaper import OPTIONS
    from zombiectl.ui.spec import parse

    params = parse(args, OPTIONS, rest="cmd")
    if params is None or not params["cmd"]:
        return None
    if params["kill_descendants"] and params["wait_descendants"]:
        return None  # click's command reports the conflict
    return params
