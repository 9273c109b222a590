"""The one check of every number a user types: seconds, counts, pids.

Each kind has one validator, called by the click option types (`ui/options.py`)
and by the fast paths alike (which must not import click). A validator returns the
value or raises `InvalidValue` with the sentence to show; the caller turns that into
exit 2. Stdlib only.

Rules, whatever the option:
- the text is the number and nothing else: ASCII digits (`١٢` and `²` are not numbers
  here), no surrounding spaces, no `0x`, no `_` separators;
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
# More digits than any count anybody means, and few enough that int() stays cheap and
# below Python's own limit on converting long strings (4300 digits).
_MAX_DIGITS = 4000


def _is_whole(text: str) -> bool:
    """`-?[0-9]+` (without `re`, which `run`'s fast path does not import)."""
    body = text[1:] if text.startswith("-") else text
    return body.isascii() and body.isdigit()


def _is_decimal(text: str) -> bool:
    """`[+-]?([0-9]+.?[0-9]*|.[0-9]+)([eE][+-]?[0-9]+)?`: what a person types for seconds."""
    if not text.isascii():
        return False
    if text.startswith(("+", "-")):
        text = text[1:]
    mantissa, e, exponent = text.lower().partition("e")
    if exponent.startswith(("+", "-")):
        exponent = exponent[1:]
    if e and not exponent.isdigit():
        return False
    whole_part, _, fraction = mantissa.partition(".")
    return (
        (whole_part + fraction).isdigit()
        and (not whole_part or whole_part.isdigit())
        and (not fraction or fraction.isdigit())
    )


class InvalidValue(ValueError):
    """A value the user typed is not acceptable; str() is the sentence to show."""


def _shown(value: object) -> str:
    # repr escapes control characters, so the sentence stays on one line; a value as
    # long as a command line is cut rather than repeated whole.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _digits(value: object, what: str) -> int:
    text = value if isinstance(value, str) else str(value)
    if len(text) > _MAX_DIGITS or not _is_whole(text):
        raise InvalidValue(f"{_shown(value)} is not {what}")
    return int(text)


def whole(value: object, *, minimum: int, maximum: int, what: str = "a whole number") -> int:
    """A whole number within [minimum, maximum], from ASCII digits (a leading '-' allowed)."""
    if isinstance(value, bool):
        raise InvalidValue(f"{_shown(value)} is not {what}")
    n = value if isinstance(value, int) else _digits(value, what)
    if n < minimum or n > maximum:
        raise InvalidValue(f"{_shown(value)} is not in the range {minimum} to {maximum}")
    return n


def pid(value: object) -> int:
    """A process id: ASCII digits, from 1 up. Existence is the command's check (exit 3)."""
    what = "a process id (a whole number from 1 up)"
    if isinstance(value, bool):
        raise InvalidValue(f"{_shown(value)} is not {what}")
    n = value if isinstance(value, int) else _digits(value, what)
    if n < 1:
        raise InvalidValue(f"{_shown(value)} is not {what}")
    return n


def beyond_any_pid(n: int) -> bool:
    """True for a number no process can have (past the kernel's limit): "no such process".

    Such a number must not reach os.kill or pidfd_open, which raise OverflowError past
    the C int.
    """
    return n > PID_MAX_LIMIT


def seconds(value: object, *, minimum: float = 0.0, maximum: float = DAY) -> float:
    """A finite number of seconds within [minimum, maximum], from ASCII decimal text."""
    if isinstance(value, bool):
        raise InvalidValue(f"{_shown(value)} is not a number of seconds")
    if isinstance(value, float):
        x = value
    elif isinstance(value, int):
        x = float(min(max(value, -(10**308)), 10**308))  # float() of a bigger int overflows
    else:
        text = value if isinstance(value, str) else str(value)
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise InvalidValue(f"{_shown(value)} is not a finite number of seconds")
        if len(text) > _MAX_DIGITS or not _is_decimal(text):
            raise InvalidValue(f"{_shown(value)} is not a number of seconds")
        x = float(text)
    if not math.isfinite(x):
        raise InvalidValue(f"{_shown(value)} is not a finite number of seconds")
    if x < minimum or x > maximum:
        raise InvalidValue(
            f"{_shown(value)} is not in the range {minimum:g} to {maximum:g} seconds"
        )
    return x + 0.0  # -0.0 becomes 0.0
