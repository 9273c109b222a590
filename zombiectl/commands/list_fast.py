"""`zombiectl list` in its machine-readable forms, without importing click or rich.

Monitoring checks run `zombiectl list --json` (or `--format prometheus`, or
`--textfile PATH` from a timer) every few seconds on hosts with big process tables, so
start-up time matters as much as the scan. This parser understands only the
well-formed options of those forms and returns the same values, under the same names,
as the click options in `list_cmd.py`; anything else (`--help`, a bad value, a
conflict, the table format) returns None and click takes over, so every usage error
still comes from one place.

    $ zombiectl list --format prometheus --top 1 | grep -v '^#'
    zombiectl_processes 838
    zombiectl_zombies 23
    zombiectl_zombie_parents 3
    zombiectl_zombies_by_parent{ppid="80454",parent="leaky-server"} 17
    zombiectl_scan_duration_seconds 0.014871
"""

from __future__ import annotations

import sys

from zombiectl import validate
from zombiectl.errors import BadUsage, ZombiectlError
from zombiectl.render.text import DEFAULT_TOP
from zombiectl.stdout import reader_left

FORMATS = ("table", "json", "prometheus")
_VALUED = ("--pid", "--max", "--format", "--top", "--textfile", "--by")
BY = ("parent", "container")


def _number(name: str, value: str) -> int | None:
    """The same check as the click option (one validator); None lets click say why."""
    try:
        if name == "--pid":
            return validate.pid(value)
        return validate.whole(value, minimum=0, maximum=validate.PID_MAX_LIMIT)
    except validate.InvalidValue:
        return None


def parse_fast(args: list[str]) -> dict[str, object] | None:
    """The click parameters of `list` (same names, same values), or None to defer to click."""
    opts: dict[str, object] = {
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
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            if name not in _VALUED:
                return None
        elif arg in _VALUED:
            name, value = arg, next(it, None)  # type: ignore[assignment]
            if value is None:
                return None
        else:
            name, value = arg, ""
        if name == "--json":
            opts["as_json"] = True
        elif name == "--format" and value in FORMATS:
            opts["fmt"] = value
        elif name in ("--pid", "--max", "--top"):
            n = _number(name, value)
            if n is None:
                return None
            opts["max_zombies" if name == "--max" else name[2:]] = n
        elif name == "--by" and value in BY:
            opts["by"] = value
        elif name == "--textfile" and value and not value.startswith("-"):
            opts["textfile"] = value
        else:
            return None
    return opts


def resolve_format(fmt: str | None, as_json: bool, textfile: str | None) -> str:
    """The output format the options ask for; BadUsage when they contradict each other."""
    if textfile is not None:
        if as_json or fmt not in (None, "prometheus"):
            given = "--json" if as_json else f"--format {fmt}"
            raise BadUsage(f"--textfile writes the prometheus format; it cannot go with {given}")
        return "prometheus"
    if as_json:
        return "json"
    return fmt or "table"


def emit_machine_readable(
    fmt: str,
    pid: int | None,
    max_zombies: int | None,
    top: int,
    textfile: str | None = None,
    by: str = "parent",
) -> int:
    from zombiectl.errors import EXIT_CONDITION
    from zombiectl.listing.zombies import exceeds, list_zombies
    from zombiectl.render.text import listing_json, listing_prometheus

    if textfile is not None:
        from zombiectl.listing.textfile import check_textfile, write_atomically

        check_textfile(textfile)  # before the scan: a typo should cost nothing
    result = list_zombies(pid, by=by)
    text = listing_json(result) + "\n" if fmt == "json" else listing_prometheus(result, top)
    # The exposition format is UTF-8 whatever the locale (process names may be anything).
    data = text.encode("utf-8")
    if textfile is not None:
        write_atomically(textfile, data)
    else:
        out = getattr(sys.stdout, "buffer", None)
        try:
            if out is None:  # a text-only stream (a test's StringIO)
                sys.stdout.write(text)
            else:
                sys.stdout.flush()
                out.write(data)
            sys.stdout.flush()
        except BrokenPipeError:
            reader_left()
    return EXIT_CONDITION if exceeds(result, max_zombies) else 0


def try_fast_list(args: list[str]) -> int | None:
    opts = parse_fast(args)
    if opts is None:
        return None
    textfile: str | None = opts["textfile"]  # type: ignore[assignment]
    try:
        fmt = resolve_format(opts["fmt"], bool(opts["as_json"]), textfile)  # type: ignore[arg-type]
    except BadUsage:
        return None  # click reports the conflict, in its usage-error style
    if fmt == "table":
        return None
    try:
        return emit_machine_readable(
            fmt,
            opts["pid"],  # type: ignore[arg-type]
            opts["max_zombies"],  # type: ignore[arg-type]
            opts["top"],  # type: ignore[arg-type]
            textfile,
            opts["by"],  # type: ignore[arg-type]
        )
    except ZombiectlError as err:
        sys.stderr.write(f"zombiectl: {err}\n")
        return err.exit_code
    except BrokenPipeError:
        reader_left()
