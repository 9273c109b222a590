"""Text that another user controls: process names, command lines, paths from /proc.

Any user can name a process `[/]`, `\\x1b[2J` or `a\\nb`, or give it bytes that are not
UTF-8. Such text is data: it is never parsed as rich markup, never reaches a terminal
with a raw control character, and never breaks a line that is promised to be one line.
Every renderer turns it into display text through `display()`; JSON carries `for_json()`.

Stdlib only, and cheap to import: the fast paths use it.
"""

from __future__ import annotations

import unicodedata

# Shown as the escapes a programmer reads; any other control character as \\xNN or \\uNNNN.
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}


def from_proc(raw: bytes) -> str:
    """Decode bytes read from /proc: invalid UTF-8 becomes `\\xNN` text (backslashreplace)."""
    return raw.decode("utf-8", "backslashreplace")


def for_json(text: str) -> str:
    """The exact text where it is valid UTF-8; undecodable bytes as `\\xNN` text.

    psutil decodes with `surrogateescape`, the fast /proc reader with `backslashreplace`:
    both come out the same here, so every command writes a name the same way.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: format characters such as the bidi overrides that
    # reorder what follows them; Zl/Zp: line and paragraph separators; Cs: lone surrogates.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def display(text: str) -> str:
    """One line of text that is safe on a terminal: control characters shown escaped.

    The result still holds `[`, `]` and `\\`: hand it to rich as `Text(...)` (or with
    `markup=False`), never inside a markup string.
    """
    text = for_json(text)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)
