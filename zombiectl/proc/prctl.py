"""The two prctl(2) calls a subreaper needs: become one, and ask whether it already is.

Standard library only (ctypes, imported when called), so that cheap imports stay cheap.
"""

from __future__ import annotations

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _libc() -> object | None:
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def set_child_subreaper(on: bool = True) -> bool:
    """Make this process adopt its orphaned descendants (on) or stop doing so; True if done."""
    libc = _libc()
    if libc is None:
        return False
    try:
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)  # type: ignore[attr-defined]
    except AttributeError:  # no prctl: not Linux
        return False


def is_child_subreaper() -> bool:
    """True when this process is already a child subreaper."""
    import ctypes

    libc = _libc()
    if libc is None:
        return False
    flag = ctypes.c_int(0)
    try:
        ok = libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return bool(ok and flag.value)
