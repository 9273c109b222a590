"""The root click group: registers the commands lazily and maps errors to exit codes.

Each command lives in its own folder, `zombiectl/<folder>/cli.py`, and is imported only
when it is invoked (`zombiectl --help` lists them from `COMMANDS` without importing
any), so one command's imports never slow another's start.
"""

from __future__ import annotations

import errno
import importlib

import click

from zombiectl import __version__
from zombiectl.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ZombiectlError,
    interrupted_exit_code,
    report,
    report_error,
    signum_of,
)
from zombiectl.stdout import reader_left

# One line registers a command: its name, the folder whose cli.py holds its click
# `command`, and its one-line help (shown by `zombiectl --help` without importing it).
# The order is the order `--help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("listing", "One scan of the process table: zombies by parent."),
    "watch": ("watching", "Live view of a process's children, or of the system."),
    "demo": ("demo", "Make zombies happen live, with real code."),
    "explain": ("explain", "What a zombie is, and why each demo makes or prevents them."),
    "reap": ("reaping", "Clear zombies safely by nudging (or ending) their parents."),
    "run": ("init", "Run CMD under a reaping init, like tini."),
    "doctor": ("doctor", "Does this machine or container reap orphans?"),
    "check": ("check", "Run a program (or watch a pid) and grade its zombies."),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def command_module(name: str) -> str:
    """The module that defines command `name`'s click `command`."""
    return f"zombiectl.{COMMANDS[name][0]}.cli"


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command: click.Command = importlib.import_module(command_module(cmd_name)).command
        return command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: object,
    ) -> click.Context:
        # `--help` and `--version` write while the context is made.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            reader_left()

    def invoke(self, ctx: click.Context) -> object:
        # click's main() turns EPIPE into exit 1, a failure; here it is a reader that left.
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            reader_left()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so `zombiectl --help` imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


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


# A fork, a thread, a descriptor or memory refused: zombiectl's own limits, never a bug
# of the program under check (exit 6, not a traceback).
# ENOSPC is not here: it is a full disk under an output, exit 74 (`stdout.output_failed`).
_RESOURCE_ERRNOS = (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE)


def _resource_limit(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or getattr(err, "errno", None) in _RESOURCE_ERRNOS


def _strerror(err: BaseException) -> str:
    return getattr(err, "strerror", None) or type(err).__name__


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
    except (MemoryError, OSError) as err:
        if not _resource_limit(err):
            raise
        report(f"zombiectl: error: out of resources: {_strerror(err)}")
        return EXIT_ENVIRONMENT
    if isinstance(rv, int):
        return rv
    return 0
