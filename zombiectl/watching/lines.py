"""`zombiectl watch`'s lines: one per sample as plain text or JSON, the last word when
the watched process exits, and the texts the live view (`watching.render`) shows too.
Without rich: `watch --json` and a piped `watch` import none."""

from __future__ import annotations

import json

from zombiectl.ui.cells import format_pids
from zombiectl.untrusted import display
from zombiectl.watching.tracker import Exited, Sample


def states_text(states: dict[str, int]) -> str:
    return " ".join(f"{s}:{n}" for s, n in states.items()) or "-"


def duration(seconds: float) -> str:
    """A coarse, readable span: 1.5s, 45s, 12m, 3h10m, 4d."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{seconds / 86400:.0f}d"


def rate_text(s: Sample) -> str:
    """`leak 12.0/min, pid_max in ~3h10m`: the pace, and when the tightest limit is hit."""
    text = f"leak {s.rate_per_min:.1f}/min"
    left = s.seconds_left
    if left is not None and s.headroom is not None:
        text += f", {s.headroom.name} ({s.headroom.limit}) reached in ~{duration(left)}"
    return text


def title(s: Sample) -> str:
    """Display text: the watched process's name is escaped, so a plain line stays one line."""
    if s.pid is None:
        return "whole system"
    return f"pid {s.pid} ({display(s.name)})" if s.name else f"pid {s.pid}"


def what(s: Sample) -> str:
    if s.pid is None:
        return "processes"
    return "descendants" if s.tree else "children"


def plain_line(s: Sample) -> str:
    line = (
        f"t={s.t:.2f}s {title(s)}: {what(s)} {s.children}, zombies {s.zombies}"
        f" (+{len(s.new_zombies)} new, -{len(s.reaped)} reaped)  {rate_text(s)}"
        f"  states {states_text(s.states)}"
    )
    if s.pid is not None and s.zombie_pids:
        line += f"  zombie pids {format_pids(s.newest_first())}"
    return line


def exit_line(e: Exited) -> str:
    line = f"pid {e.pid} exited" + (f" (it was {display(e.name)})" if e.name else "")
    if not e.zombies:
        return line
    held = sum(a.zombies for a in e.adopters)
    parts = [f"{a.zombies} adopted by pid {a.pid} ({display(a.name)})" for a in e.adopters]
    if e.gone:
        parts.append(f"{e.gone} already reaped")
    rest = e.zombies - held - e.gone
    if rest > 0:
        parts.append(f"{rest} not seen any more")
    noun = "zombie" if e.zombies == 1 else "zombies"
    return f"{line}; its {e.zombies} {noun}: " + ", ".join(parts)


def json_line(s: Sample) -> str:
    return json.dumps(s.as_dict())
