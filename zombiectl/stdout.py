"""Writing to stdout when the reader may leave: `zombiectl list | head -1`.

A closed pipe is not an error of zombiectl's: it exits quietly with 141, the status a
shell reports for a process killed by SIGPIPE (what `ps` gets), instead of a traceback
or click's and rich's exit 1. Every write to stdout goes through `write` or
`write_bytes` here, or through a rich console that calls `reader_left` (see
`zombiectl.ui.console`). A stdout that was closed before zombiectl started (`>&-`)
is a reader that left before the first write; see `prepare_streams`. An output that
cannot be written (`> /dev/full`) is one line on stderr and EXIT_IO_ERROR.

Any locale: where stdout or stderr cannot encode a character (ISO-8859-x, ASCII), it is
written as zombiectl's ASCII for its own symbols ("…" as "...") and as a `\\uNNNN`
escape for anything else, a process name for one, never a UnicodeEncodeError.

Stdlib only: the fast paths use it.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys

from zombiectl.errors import EXIT_IO_ERROR

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from typing import IO, NoReturn

EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE
# What a write to a full or failing disk (or terminal, or pipe to one) fails with.
WRITE_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG)

# The encode error handler set on stdout and stderr when their encoding is not UTF-8.
ERRORS = "zombiectl-ascii"

# zombiectl's own symbols, as ASCII for a locale that cannot show them.
ASCII_FALLBACK = {
    "\u2026": "...",  # …
    "\u2265": ">=",  # ≥
    "\u2264": "<=",  # ≤
    "\u2192": "->",  # →
    "\u2713": "ok",  # ✓
    "\u2717": "X",  # ✗
    "\u201c": '"',  # “ and ” around a quoted title
    "\u201d": '"',
    "\u2581": "_",  # ▁ to █: a sparkline's bars, lowest to highest
    "\u2582": ".",
    "\u2583": ",",
    "\u2584": "-",
    "\u2585": "~",
    "\u2586": "=",
    "\u2587": "*",
    "\u2588": "#",
}


def _ascii_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for ch in err.object[err.start : err.end]:
        known = ASCII_FALLBACK.get(ch)
        if known is None:
            code = ord(ch)
            if code < 0x100:
                known = f"\\x{code:02x}"
            elif code < 0x10000:
                known = f"\\u{code:04x}"
            else:
                known = f"\\U{code:08x}"
        out.append(known)
    return "".join(out), err.end


class _Closed:
    """sys.stdout when fd 1 was closed at start: every write is a reader that left."""

    encoding = "utf-8"
    errors = "strict"
    closed = False

    def write(self, text: object) -> int:
        raise BrokenPipeError(32, "stdout is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(9, "stdout is closed")


class _Discard(_Closed):
    """sys.stderr when fd 2 was closed at start: messages go nowhere, nothing fails."""

    def write(self, text: object) -> int:
        return 0


def prepare_streams() -> None:
    """Make stdout and stderr safe to write whatever the locale, and stand-ins for them
    where they were closed before the start; called once, before any command runs."""
    if sys.stdout is None:
        sys.stdout = _Closed()
    if sys.stderr is None:
        sys.stderr = _Discard()
    for stream in (sys.stdout, sys.stderr):
        encoding = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name
        reconfigure = getattr(stream, "reconfigure", None)
        if encoding != "utf-8" and reconfigure is not None:
            reconfigure(errors=error_handler())


def error_handler() -> str:
    """The name of the encode error handler (registered on first use) that writes what
    an encoding lacks as ASCII_FALLBACK, else as a backslash escape."""
    try:
        codecs.lookup_error(ERRORS)
    except LookupError:
        codecs.register_error(ERRORS, _ascii_fallback)
    return ERRORS


def _silence_stdout() -> None:
    # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def reader_left() -> NoReturn:
    _silence_stdout()
    raise SystemExit(EXIT_BROKEN_PIPE)


def finish_output() -> None:
    """Flush stdout before the exit, so that a write that fails is told (here or in
    `output_failed`), not left to the interpreter's final flush."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        reader_left()


def output_failed(err: OSError) -> int:
    """EXIT_IO_ERROR and one line on stderr for an output that could not be written (a
    full disk, an I/O error); any other OSError is raised again."""
    if err.errno not in WRITE_ERRNOS:
        raise err
    _silence_stdout()
    try:
        sys.stderr.write(f"zombiectl: error: cannot write the output: {os.strerror(err.errno)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return EXIT_IO_ERROR


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
