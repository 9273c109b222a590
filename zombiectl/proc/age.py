"""How long a zombie has been one, computed in one function: `zombie_age`.

The kernel records when a process started, not when it exited, so two bounds are known:
- seen: since the first look that found it a zombie (it was one by then: a lower bound,
  exact when kernel process events report the exit itself);
- at most: since the process started (it cannot have been a zombie before it existed:
  an upper bound), from field 22 of /proc/PID/stat against /proc/uptime.

    >>> zombie_age(now=12.5, first_seen=10.0, started=2.0)
    (2.5, 10.5)
    >>> zombie_age(now=12.5, first_seen=10.0)
    (2.5, None)
"""

from __future__ import annotations

import os

from zombiectl.proc.files import PROC, bcat, cat
from zombiectl.proc.table import Stat


def zombie_age(
    now: float, first_seen: float, started: float | None = None
) -> tuple[float, float | None]:
    """(seen, at most) seconds a process has been a zombie at `now`.

    `first_seen`: when it was first seen as a zombie (or reported to exit); `started`:
    when the process started, on the same clock (`since_start` gives it), if known. The
    upper bound is never below the lower one: a start time is rounded to a clock tick.
    """
    seen = max(0.0, now - first_seen)
    if started is None:
        return seen, None
    return seen, max(seen, now - started)


def clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError):
        return 100


def uptime(proc: str = PROC) -> float | None:
    text = cat(f"{proc}/uptime")
    try:
        return float(text.split()[0]) if text else None
    except (IndexError, ValueError):
        return None


def since_start(pids: list[int], proc: str = PROC) -> dict[int, float]:
    """Seconds since each process started (field 22 of its stat); gone ones are left out.

    Subtract from the caller's `now` to get `zombie_age`'s `started`.
    """
    up = uptime(proc)
    if up is None:
        return {}
    hz = clock_ticks()
    out = {}
    for pid in pids:
        raw = bcat(f"{proc}/{pid}/stat")
        if raw is None:
            continue
        try:
            start = Stat(raw).starttime
        except (IndexError, ValueError):
            continue
        out[pid] = max(0.0, up - start / hz)
    return out
