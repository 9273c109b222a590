"""Writing to stdout when the reader may leave: `zombiectl list | head -1`.

A closed pipe is not an error of zombiectl's: it exits quietly with 141, the status a
shell reports for a process killed by SIGPIPE (what `ps` gets), instead of a traceback
or click's and rich's exit 1. Stdlib only: the fast paths use it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import NoReturn

EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE


def reader_left() -> NoReturn:
    # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise SystemExit(EXIT_BROKEN_PIPE)


def write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        reader_left()
