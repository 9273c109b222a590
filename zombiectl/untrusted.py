"""Text that another user controls: process names, command lines, paths from /proc.

Any user can name a process `[/]`, `\\x1b[2J` or `a\\nb`, or give it bytes that are not
UTF-8. Such text is data: it is never parsed as rich markup, never reaches a terminal
with a raw control character, and never breaks a line that is promised to be one line.

- `from_proc(raw)` decodes bytes read from /proc: invalid UTF-8 becomes `\\xNN` text.
- `for_json(text)` is what JSON carries: the exact text where it is valid UTF-8, and
  `\\xNN` for undecodable bytes, whether the text came from /proc or from psutil.
- `display(text)` is what a screen, a log line, a prompt or an error message shows:
  `for_json` with every control, format and separator character escaped, so it is
  always one line and never moves the cursor, recolours or reorders the terminal.

    >>> display(from_proc(b"[/]\\x1b[2Ja\\nb\\xff"))
    '[/]\\\\x1b[2Ja\\\\nb\\\\xff'

Stdlib only, and cheap to import: the fast paths use it (unicodedata is imported only
when a name is not plain printable ASCII).
"""

from __future__ import annotations

# Shown as the escapes a programmer reads; any other unsafe character as \\xNN, \\uNNNN
# or \\UNNNNNNNN, as Python writes it.
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}

# Cc: C0/C1 controls and DEL; Cf: format characters such as the bidi overrides that
# reorder what follows them, or zero-width ones that hide text; Zl/Zp: line and
# paragraph separators; Cs: lone surrogates; Co: private use; Cn: unassigned (a
# terminal cannot know what they are).
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))


def from_proc(raw: bytes) -> str:
    """Decode bytes read from /proc: invalid UTF-8 becomes `\\xNN` text (backslashreplace)."""
    return raw.decode("utf-8", "backslashreplace")


def for_json(text: str) -> str:
    """The exact text where it is valid UTF-8; undecodable bytes as `\\xNN` text.

    psutil (and `os.fsdecode`) decode with `surrogateescape`, the /proc reader with
    `backslashreplace`: both come out the same here, so every command writes a name the
    same way. A lone surrogate that no decoder made becomes `\\udNNN` text.
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
        return from_proc(raw)
    return text


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def display(text: str) -> str:
    """One line of text that is safe on a terminal: control characters shown escaped.

    The result still holds `[`, `]` and `\\`: hand it to rich as `Text(...)`, never
    inside a markup string.
    """
    text = for_json(text)
    if text.isascii() and text.isprintable():
        return text
    from unicodedata import category

    return "".join(_escape(ch) if category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)
