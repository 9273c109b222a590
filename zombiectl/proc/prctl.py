"""The prctl(2) calls zombiectl makes, in one place.

A subreaper (`run`, `demo`, `check`, the pytest plugin) adopts its orphaned descendants;
a child asks to die with its parent (`run`'s CMD, every demo process) so that nothing
outlives a zombiectl that was SIGKILLed; the demo's guard names itself; the doctor's
probe makes itself non-dumpable before it enters a container.

Standard library only, through `zombiectl.proc.libc` (ctypes is imported at the first
call: `run` imports this module and must start fast).
"""

from __future__ import annotations

from zombiectl.proc import libc

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, arg: object) -> None:
    """prctl(option, arg); OSError where it fails or does not exist (not Linux)."""
    libc.call("prctl", option, arg, 0, 0, 0)


def set_child_subreaper(on: bool = True) -> bool:
    """Make this process adopt its orphaned descendants (on) or stop doing so; True if done."""
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, int(on))
    except OSError:
        return False
    return True


def is_child_subreaper() -> bool:
    """True when this process is already a child subreaper."""
    import ctypes

    flag = ctypes.c_int(0)
    try:
        _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag))
    except OSError:
        return False
    return bool(flag.value)


class Subreaper:
    """This process as a child subreaper for a while (`demo`, `check`, the pytest plugin).

    `start()` makes it one; `stop()` undoes that, unless it was one already (a caller's
    `zombiectl run`, or PID 1), so a nested user never takes the role from an outer one.
    """

    def __init__(self) -> None:
        self.was = False
        self.active = False

    def start(self) -> bool:
        """True when this process is now a child subreaper."""
        self.was = is_child_subreaper()
        self.active = set_child_subreaper(True) or self.was
        return self.active

    def stop(self) -> None:
        if self.active and not self.was:
            set_child_subreaper(False)
        self.active = False


def set_death_signal(sig: int) -> None:
    """Have the kernel send sig to this process when its parent exits; OSError if it cannot.

    Call it after fork and then check that the parent is still the one that forked you:
    a parent that exited before the call left you orphaned with nothing armed.
    """
    _prctl(PR_SET_PDEATHSIG, sig)


def set_name(name: bytes) -> bool:
    """This process's name as `ps` and /proc/PID/comm show it (at most 15 bytes)."""
    try:
        _prctl(PR_SET_NAME, name)
    except OSError:
        return False
    return True


def set_dumpable(on: bool) -> None:
    """Whether this process may be ptraced or core-dumped by its user; OSError if it fails.

    Off, no one inside a container it enters can trace it or read its memory."""
    _prctl(PR_SET_DUMPABLE, int(on))
