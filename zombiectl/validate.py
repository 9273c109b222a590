"""The one check of every number a user types: seconds, counts, pids.

Each kind has one validator, called by the click option types (`commands/common.py`)
and by the fast paths alike (which must not import click). A validator returns the
value or raises `InvalidValue` with the sentence to show; the caller turns that into
exit 2. Stdlib only.

Rules, whatever the option:
- digits are ASCII digits (`١٢` and `²` are not numbers here);
- seconds are finite (no NaN, no inf) and at most a stated maximum (one day unless an
  option says otherwise);
- pids are whole numbers from 1 up; one beyond the kernel's largest possible pid is
  accepted here and reported by the command as "no such process" (exit 3).
"""

from __future__ import annotations

import math

DAY = 86400.0
# The kernel's PID_MAX_LIMIT on 64-bit systems (pid_max can be raised up to this).
PID_MAX_LIMIT = 4 * 1024 * 1024
# Ints larger than this are never a count anybody means; it also keeps int() cheap.
_MAX_DIGITS = 30


class InvalidValue(ValueError):
    """A value the user typed is not acceptable; str() is the sentence to show."""


def _ascii_number(text: str) -> bool:
    return text.isascii() and bool(text)


def whole(value: object, *, minimum: int, maximum: int, what: str = "a whole number") -> int:
    """A whole number within [minimum, maximum], from ASCII digits (a leading '-' allowed)."""
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not {what}")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip()
        digits = text[1:] if text.startswith("-") else text
        if not (_ascii_number(digits) and digits.isdigit()) or len(digits) > _MAX_DIGITS:
            raise InvalidValue(f"{value!r} is not {what}")
        n = int(text)
    if n < minimum or n > maximum:
        raise InvalidValue(f"{value!r} is not in the range {minimum} to {maximum}")
    return n


def pid(value: object) -> int:
    """A process id: ASCII digits, from 1 up. Existence is the command's check (exit 3)."""
    what = "a process id (a whole number from 1 up)"
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        text = str(value).strip()
        if not (_ascii_number(text) and text.isdigit()):
            raise InvalidValue(f"{value!r} is not {what}")
        # A pid with more digits than any real one can have stays a pid that does not
        # exist; capping keeps every later call (os.kill, pidfd_open) free of overflow.
        n = int(text) if len(text) <= _MAX_DIGITS else PID_MAX_LIMIT + 1
    if n < 1:
        raise InvalidValue(f"{value!r} is not {what}")
    return n


def beyond_any_pid(n: int) -> bool:
    """True for a number no process can have (past the kernel's limit): "no such process"."""
    return n > PID_MAX_LIMIT


def seconds(value: object, *, minimum: float = 0.0, maximum: float = DAY) -> float:
    """A finite number of seconds within [minimum, maximum]."""
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not a number of seconds")
    if isinstance(value, (int, float)):
        x = float(value)
    else:
        text = str(value).strip()
        if not text.isascii():
            raise InvalidValue(f"{value!r} is not a number of seconds")
        try:
            x = float(text)
        except ValueError:
            raise InvalidValue(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(x):
        raise InvalidValue(f"{value!r} is not a finite number of seconds")
    if x < minimum or x > maximum:
        raise InvalidValue(f"{value!r} is not in the range {minimum:g} to {maximum:g} seconds")
    return x
