"""Errors that end a command, each carrying its exit code (docs/reference.md, "Exit codes").

Commands raise these; `zombiectl.cli.run_cli` (or `zombiectl.fastpath`) turns one into a
single line on stderr (`report_error`, the one writer of error lines) and its exit code.
Commands whose status is a count or a verdict return it instead (`list --max`, `reap`,
`doctor`, `demo`, `check`), `run` passes its command's status through, a closed
stdout ends the process with 141 and an output that cannot be written with 74
(`zombiectl.stdout`).
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_CONDITION = 1  # list --max exceeded, reap left zombies or refused one, check failed
EXIT_USAGE = 2
EXIT_NO_PROCESS = 3
EXIT_PERMISSION = 4
EXIT_UNSUPPORTED = 5
# Could not be carried out for a reason outside the program under test: a port another
# program holds before the check began, zombiectl's own resource limits (no fork left for
# the guard). `check`'s verdict "error".
EXIT_ENVIRONMENT = 6
# EX_IOERR of sysexits.h: an output (stdout, a report file) could not be written.
EXIT_IO_ERROR = 74
# Interrupted after clean-up: 128 + the signal's number, as a shell reports a process
# that the signal killed, so scripts see the same code whether or not zombiectl cleaned up.
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM
_SIGINT = 2
_SIGTERM = 15


class ZombiectlError(Exception):
    """Base class: a message for the user and the exit code to leave with."""

    exit_code = EXIT_CONDITION


class OutputFailed(ZombiectlError):
    """A file zombiectl writes could not be written (a full disk, an I/O error)."""

    exit_code = EXIT_IO_ERROR


class BadUsage(ZombiectlError):
    """Bad input that click's own parsing cannot catch (for example a pid that is a kernel thread)."""

    exit_code = EXIT_USAGE


class NoSuchProcess(ZombiectlError):
    exit_code = EXIT_NO_PROCESS

    def __init__(self, pid: int, what: str = "process") -> None:
        super().__init__(f"no such {what}: {pid}")
        self.pid = pid


class PermissionDenied(ZombiectlError):
    exit_code = EXIT_PERMISSION


class NotSupported(ZombiectlError):
    exit_code = EXIT_UNSUPPORTED


class ResourceLimit(ZombiectlError):
    """zombiectl itself ran out of something (processes, descriptors, memory): exit 6."""

    exit_code = EXIT_ENVIRONMENT


class Interrupted(ZombiectlError):
    """Ctrl-C or SIGTERM ended the command after it cleaned up: 130 or 143."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "interrupted", signum: int = _SIGINT) -> None:
        super().__init__(message)
        self.exit_code = interrupted_exit_code(signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so the same clean-up runs.

    `except KeyboardInterrupt` catches both; `signum_of` tells them apart.
    """

    signum = _SIGTERM


def signum_of(interrupt: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM for Terminated, else SIGINT."""
    return getattr(interrupt, "signum", _SIGINT)


def interrupted_exit_code(signum: int) -> int:
    return EXIT_TERMINATED if signum == _SIGTERM else EXIT_INTERRUPTED


def report(line: str) -> None:
    """Write one line on stderr: the one way zombiectl tells what went wrong.

    The line may quote names and paths that another user chose, so it is escaped to one
    line of text (`zombiectl.untrusted.display`). Never raises: stderr may be closed too.
    """
    from zombiectl.untrusted import display

    try:
        sys.stderr.write(display(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def report_error(err: ZombiectlError) -> int:
    """`zombiectl: error: <message>` on stderr (docs/reference.md); the error's exit code.

    An interruption is not an error: it reads `zombiectl: <message>` (`zombiectl:
    interrupted`), as Ctrl-C outside any command does.
    """
    if isinstance(err, Interrupted):
        report(f"zombiectl: {err}")
    else:
        report(f"zombiectl: error: {err}")
    return err.exit_code
