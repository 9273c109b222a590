"""The root click group: registers the commands lazily and maps errors to exit codes.

Each command lives in its own module under `zombiectl.commands` and is imported only
when it is invoked (or when `--help` lists it), so one command's imports never slow
another's start.
"""

from __future__ import annotations

import importlib

import click

from zombiectl import __version__
from zombiectl.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ZombiectlError,
    interrupted_exit_code,
    report,
    report_error,
    signum_of,
)
from zombiectl.stdout import reader_left

# name -> (module, one-line help). The order is the order `--help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("zombiectl.listing.cli", "One scan of the process table: zombies by parent."),
    "watch": ("zombiectl.watching.cli", "Live view of a process's children, or of the system."),
    "demo": ("zombiectl.demo.cli", "Make zombies happen live, with real code."),
    "explain": (
        "zombiectl.explain.cli",
        "What a zombie is, and why each demo makes or prevents them.",
    ),
    "reap": (
        "zombiectl.reaping.cli",
        "Clear zombies safely by nudging (or ending) their parents.",
    ),
    "run": ("zombiectl.init.cli", "Run CMD under a reaping init, like tini."),
    "doctor": ("zombiectl.doctor.cli", "Does this machine or container reap orphans?"),
    "check": ("zombiectl.check.cli", "Run a program (or watch a pid) and grade its zombies."),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _module_exists(entry[0]):
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so `zombiectl --help` imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="Example: zombiectl list    (then: zombiectl explain, zombiectl demo all)",
)
@click.version_option(__version__, prog_name="zombiectl")
def cli() -> None:
    """Make zombie processes visible, explain them, and clear them safely."""


def _usage_line(err: click.UsageError) -> str:
    ctx = err.ctx
    path = ctx.command_path if ctx is not None else "zombiectl"
    hint = f" (see '{path} --help')" if ctx is not None else ""
    return f"{path}: error: {err.format_message()}{hint}"


def run_cli(args: list[str]) -> int:
    """Run the click group; return the exit code. Errors become one line on stderr."""
    try:
        rv = cli.main(args, prog_name="zombiectl", standalone_mode=False)
    except click.UsageError as err:
        report(_usage_line(err))
        return EXIT_USAGE
    except click.ClickException as err:
        report(f"zombiectl: error: {err.format_message()}")
        return err.exit_code
    except click.exceptions.Abort:
        report("zombiectl: aborted")
        return EXIT_INTERRUPTED
    except ZombiectlError as err:
        return report_error(err)
    except KeyboardInterrupt as interrupt:
        report("zombiectl: interrupted")
        return interrupted_exit_code(signum_of(interrupt))
    except BrokenPipeError:
        reader_left()
    if isinstance(rv, int):
        return rv
    return 0
