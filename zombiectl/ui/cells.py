"""Table cells as text, shared by every command's tables (rich on a terminal, plain text
on a pipe). Stdlib only: `list`'s piped table draws without rich."""

from __future__ import annotations

PIDS_SHOWN = 8

# The columns of a table of zombies by parent (`list`, `reap`'s plan).
PARENTS_COLUMNS = ("PARENT", "NAME", "USER", "ZOMBIES", "ZOMBIE PIDS")
RIGHT_JUSTIFIED = frozenset(("PARENT", "ZOMBIES"))


def format_pids(pids: list[int], shown: int = PIDS_SHOWN) -> str:
    """The first `shown` pids, and how many more:

    >>> format_pids([3, 4, 5], shown=2)
    '3 4 … (+1)'
    """
    text = " ".join(str(p) for p in pids[:shown])
    if len(pids) > shown:
        text += f" … (+{len(pids) - shown})"
    return text


def plural(n: int, word: str, words: str | None = None) -> str:
    """n and the word, singular or plural:

    >>> plural(1, "process", "processes"), plural(2, "zombie")
    ('1 process', '2 zombies')
    """
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"
