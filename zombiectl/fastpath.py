"""The command lines that skip click: `--version`, `run` and `list`.

Their start-up time is part of what they are for: `run` is an init that must start about
as fast as a bare interpreter, and monitoring checks and scripts call `list` often on big
tables. Each parser here understands only well-formed command lines and returns exactly
the parameters click would pass to the command (same names, same values; the tests hold
each parser against click on the same arguments). Anything else (`--help`, a bad value,
a conflict) returns None and click takes over, so every usage error comes from one place.
The command then runs the same function, whichever way it was parsed.

Standard library only: this module imports neither click, rich nor psutil.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

    Params = dict[str, Any]


def dispatch(args: list[str]) -> int | None:
    """The exit code of a command run here, or None when click must handle the line."""
    if args == ["--version"]:  # before any other import: nothing else to pay for
        from zombiectl import __version__
        from zombiectl.stdout import write

        write(f"zombiectl {__version__}\n")
        return 0
    from zombiectl.errors import ZombiectlError, report, report_error

    try:
        return _run(args)
    except ZombiectlError as err:
        return report_error(err)
    except KeyboardInterrupt:
        from zombiectl.errors import EXIT_INTERRUPTED

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


# --------------------------------------------------------------------------- list

_LIST_VALUED = ("--pid", "--max", "--format", "--top", "--textfile", "--by")


def parse_list(args: list[str]) -> Params | None:
    """`list`'s click parameters, or None to defer to click."""
    from zombiectl.listing.output import DEFAULT_TOP

    params: Params = {
        "pid": None,
        "max_zombies": None,
        "fmt": None,
        "as_json": False,
        "top": DEFAULT_TOP,
        "textfile": None,
        "by": "parent",
    }
    it = iter(args)
    for arg in it:
        value: str | None = ""
        name = arg
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            if name not in _LIST_VALUED:
                return None
        elif arg in _LIST_VALUED:
            value = next(it, None)
        if value is None or not _take_list_option(params, name, value):
            return None
    if _list_conflict(params):
        return None  # click reports the conflict, in its usage-error style
    return params


def _take_list_option(params: Params, name: str, value: str) -> bool:
    from zombiectl.listing.output import BY, FORMATS

    if name == "--json":
        params["as_json"] = True
    elif name == "--format" and value in FORMATS:
        params["fmt"] = value
    elif name in ("--pid", "--max", "--top"):
        number = _list_number(name, value)
        if number is None:
            return False
        params["max_zombies" if name == "--max" else name[2:]] = number
    elif name == "--by" and value in BY:
        params["by"] = value
    elif name == "--textfile" and value and not value.startswith("-"):
        params["textfile"] = value
    else:
        return False
    return True


def _list_number(name: str, value: str) -> int | None:
    """The same check as the click option (one validator); None lets click say why."""
    from zombiectl import validate

    try:
        if name == "--pid":
            return validate.pid(value)
        return validate.whole(value, minimum=0, maximum=validate.PID_MAX_LIMIT)
    except validate.InvalidValue:
        return None


def _list_conflict(params: Params) -> bool:
    from zombiectl.errors import BadUsage
    from zombiectl.listing.output import resolve_format

    try:
        resolve_format(params["fmt"], params["as_json"], params["textfile"])
    except BadUsage:
        return True
    return False


# --------------------------------------------------------------------------- run

_RUN_FLAGS = {
    "--group": "group",
    "--kill-descendants": "kill_descendants",
    "--wait-descendants": "wait_descendants",
    "--verbose": "verbose",
    "-v": "verbose",
}


def parse_run(args: list[str]) -> Params | None:
    """`run`'s click parameters, or None to defer to click.

    Options end at `--` or at the first word that is not an option (CMD), as for tini.
    """
    from zombiectl.init.reaper import DEFAULT_GRACE

    params: Params = dict.fromkeys(_RUN_FLAGS.values(), False)
    params["grace"] = DEFAULT_GRACE
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg in _RUN_FLAGS:
            params[_RUN_FLAGS[arg]] = True
        elif arg == "--grace" or arg.startswith("--grace="):
            if arg == "--grace":
                i += 1
                if i >= len(args):
                    return None
                text = args[i]
            else:
                text = arg.split("=", 1)[1]
            params["grace"] = _run_grace(text)
            if params["grace"] is None:
                return None
        else:
            return None
        i += 1
    params["cmd"] = tuple(args[i:])
    if not params["cmd"] or (params["kill_descendants"] and params["wait_descendants"]):
        return None
    return params


def _run_grace(text: str) -> float | None:
    """The same check as click's `--grace` (one validator); None lets click say why."""
    from zombiectl import validate
    from zombiectl.init.reaper import GRACE_MAX

    try:
        return validate.seconds(text, minimum=0.0, maximum=GRACE_MAX)
    except validate.InvalidValue:
        return None
