"""Writing to stdout when the reader may leave: `zombiectl list | head -1`.

A closed pipe is not an error of zombiectl's: it exits quietly with 141, the status a
shell reports for a process killed by SIGPIPE (what `ps` gets), instead of a traceback
or click's and rich's exit 1. Every write to stdout goes through `write` or
`write_bytes` here, or through a rich console that calls `reader_left` (see
`zombiectl.ui.console`). Stdlib only: the fast paths use it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import IO, NoReturn

EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE


def reader_left() -> NoReturn:
    # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise SystemExit(EXIT_BROKEN_PIPE)


def write(text: str, stream: IO[str] | None = None) -> None:
    """Write and flush text to stream (default: stdout, as it is at the call)."""
    out = sys.stdout if stream is None else stream
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        reader_left()


def write_bytes(data: bytes) -> None:
    """Write bytes to stdout as they are, whatever the locale's encoding."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (a test's StringIO): it takes text
        write(data.decode("utf-8"))
        return
    try:
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
    except BrokenPipeError:
        reader_left()
