"""`zombiectl list` in its machine-readable forms, without importing click or rich.

Monitoring checks run `zombiectl list --json` (or `--format prometheus`) every few
seconds on hosts with big process tables, so start-up time matters as much as the scan.
This parser understands only the well-formed options of those forms; anything else
(`--help`, a bad value, the table format) returns None and click takes over, so every
error message still comes from one place.
"""

from __future__ import annotations

import sys

from zombiectl.errors import ZombiectlError


def _int(value: str, minimum: int) -> int | None:
    if not value.isdigit():
        return None
    n = int(value)
    return n if n >= minimum else None


def parse_fast(args: list[str]) -> dict[str, object] | None:
    opts: dict[str, object] = {"fmt": "table", "pid": None, "max": None, "top": 20}
    it = iter(args)
    for arg in it:
        if "=" in arg and arg.startswith("--"):
            name, value = arg.split("=", 1)
        elif arg in ("--format", "--pid", "--max", "--top"):
            name, value = arg, next(it, "")
        else:
            name, value = arg, ""
        if name == "--json" and not value:
            opts["fmt"] = "json"
        elif name == "--format" and value in ("json", "prometheus", "table"):
            if opts["fmt"] != "json" or value == "json":
                opts["fmt"] = value
        elif name in ("--pid", "--max", "--top"):
            n = _int(value, 1 if name == "--pid" else 0)
            if n is None:
                return None
            opts[name[2:]] = n
        else:
            return None
    return opts


def emit_machine_readable(fmt: str, pid: int | None, max_zombies: int | None, top: int) -> int:
    from zombiectl.errors import EXIT_CONDITION
    from zombiectl.listing import exceeds, list_zombies
    from zombiectl.render.text import listing_json, listing_prometheus

    result = list_zombies(pid)
    text = listing_json(result) + "\n" if fmt == "json" else listing_prometheus(result, top)
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_CONDITION if exceeds(result, max_zombies) else 0


def try_fast_list(args: list[str]) -> int | None:
    opts = parse_fast(args)
    if opts is None or opts["fmt"] == "table":
        return None
    try:
        return emit_machine_readable(
            str(opts["fmt"]),
            opts["pid"],  # type: ignore[arg-type]
            opts["max"],  # type: ignore[arg-type]
            opts["top"],  # type: ignore[arg-type]
        )
    except ZombiectlError as err:
        sys.stderr.write(f"zombiectl: {err}\n")
        return err.exit_code
    except BrokenPipeError:
        return 141
