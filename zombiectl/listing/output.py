"""`zombiectl list` from parameters to exit code: scan, draw, write.

Click-free, so the click command and the fast path (`zombiectl.fastpath`) run the same
function with the same parameters. It imports only what the asked-for form draws with:
json for `--json`, nothing more for Prometheus, and for the table, rich only on a
terminal; piped, the table is plain text (`render_plain`), the same bytes.
"""

from __future__ import annotations

from zombiectl.errors import EXIT_CONDITION, BadUsage
from zombiectl.listing.render_text import DEFAULT_TOP
from zombiectl.listing.zombies import BY, ListResult, exceeds, list_zombies
from zombiectl.stdout import write, write_bytes
from zombiectl.ui.spec import Option
from zombiectl.validate import PID_MAX_LIMIT

FORMATS = ("table", "json", "prometheus")

# `list`'s options, declared once: the click command and the fast path both read them.
OPTIONS = (
    Option("--pid", kind="pid", help="Only zombies whose parent is PID."),
    Option(
        "--max",
        dest="max_zombies",
        kind="count",
        bounds=(0, PID_MAX_LIMIT),
        metavar="N",
        help="Exit 1 when more than N zombies are found (a monitoring check).",
    ),
    Option(
        "--format",
        dest="fmt",
        kind="choice",
        choices=FORMATS,
        help="Output format. [default: table; prometheus with --textfile]",
    ),
    Option("--json", dest="as_json", help="Same as --format json."),
    Option(
        "--top",
        kind="count",
        bounds=(0, PID_MAX_LIMIT),
        default=DEFAULT_TOP,
        metavar="N",
        help="Prometheus: how many parents get a zombiectl_zombies_by_parent series.",
    ),
    Option(
        "--textfile",
        kind="text",
        metavar="PATH",
        help="Write the Prometheus format to PATH (a *.prom file) atomically, for "
        "node_exporter's textfile collector, instead of to stdout.",
    ),
    Option(
        "--by",
        kind="choice",
        choices=BY,
        default="parent",
        help="One row per parent, or per container (its zombies and its worst parent).",
    ),
)


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


def list_command(
    *,
    pid: int | None,
    max_zombies: int | None,
    fmt: str | None,
    as_json: bool,
    top: int,
    textfile: str | None,
    by: str,
) -> int:
    """Run `zombiectl list` with click's parameters; the exit code."""
    fmt = resolve_format(fmt, as_json, textfile)
    if textfile is not None:
        from zombiectl.listing.textfile import check_textfile

        check_textfile(textfile)  # before the scan: a typo should cost nothing
    result = list_zombies(pid, by=by)
    if fmt == "table":
        _draw_table(result)
    else:
        _emit_machine_readable(result, fmt, top, textfile)
    return EXIT_CONDITION if exceeds(result, max_zombies) else 0


def _draw_table(result: ListResult) -> None:
    from zombiectl.listing.render_plain import parents_table_text
    from zombiectl.ui import console

    text = parents_table_text(result) if console.draws_plain() else None
    if text is not None:
        write(text)
        return
    from zombiectl.listing.render_table import listing_table

    console.console_for_stdout().print(listing_table(result))


def _emit_machine_readable(result: ListResult, fmt: str, top: int, textfile: str | None) -> None:
    from zombiectl.listing.render_text import listing_json, listing_prometheus

    text = listing_json(result) + "\n" if fmt == "json" else listing_prometheus(result, top)
    # The exposition format is UTF-8 whatever the locale (process names may be anything).
    data = text.encode("utf-8")
    if textfile is not None:
        from zombiectl.listing.textfile import write_atomically

        write_atomically(textfile, data)
    else:
        write_bytes(data)
