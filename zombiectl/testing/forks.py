"""Which of pytest's zombie children pytest itself started, and which it adopted.

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

The kernel keeps no trace of a zombie's first parent: a child pytest forked and never
waited for looks exactly like an orphan pytest adopted as a subreaper. Python does know
its own children, though:

- ``os.fork`` and ``os.forkpty`` (so multiprocessing's fork start method, ``pty.fork``):
  wrappers in pytest itself record the pid they return. A fork that bypasses them (a
  reference to ``os.fork`` taken before the session, a Popen with ``preexec_fn``) is
  caught by an at-fork hook that runs in pytest, in the parent, as the fork returns: it
  reads the forking thread's list of children (``/proc/self/task/TID/children``), to
  whose end the kernel has just appended the new child. Nothing goes through the child
  or through a file descriptor a test inherits, so a test cannot fill or corrupt the
  record. A fork the hook could not read (no file descriptor left) is counted as
  missed, and the check then blames the test's unknown zombie children instead of
  forgiving them as orphans.
- ``subprocess.Popen`` and multiprocessing's ``spawn``, which fork in C without running
  the hooks: the live Popen objects (and multiprocessing's own) hold the pid.

A zombie child found in neither is an adopted orphan. (A child made with
``os.posix_spawn`` and dropped is the one kind of leak this cannot tell from an orphan.)
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from zombiectl.proc.files import pid_path

_state: dict[str, object] = {"on": False, "missed": 0, "why": ""}
_known: set[int] = set()
_hooked: list[bool] = []
_local = threading.local()  # .wrapped: a wrapper is forking in this thread
_real: dict[str, Callable[[], Any]] = {"fork": os.fork, "forkpty": os.forkpty}


def _fork() -> int:
    _local.wrapped = True
    try:
        pid: int = _real["fork"]()
    finally:
        _local.wrapped = False
    if pid and _state["on"]:
        _known.add(pid)
    return pid


def _forkpty() -> tuple[int, int]:
    _local.wrapped = True
    try:
        got: tuple[int, int] = _real["forkpty"]()
    finally:
        _local.wrapped = False
    if got[0] and _state["on"]:
        _known.add(got[0])
    return got


_WRAPPERS: dict[str, Callable[[], Any]] = {"fork": _fork, "forkpty": _forkpty}


def _read_children(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        return data
    finally:
        os.close(fd)


def _note_fork() -> None:
    """Runs in this process after each os.fork/os.forkpty (register_at_fork, parent side)."""
    if not _state["on"] or getattr(_local, "wrapped", False) or os.getpid() != _state["pid"]:
        return  # a fork the wrapper records, or one made in a child (not pytest's)
    try:
        data = _read_children(pid_path("self", "task", str(threading.get_native_id()), "children"))
    except OSError as err:
        _state["missed"] = int(_state["missed"]) + 1  # type: ignore[call-overload]
        _state["why"] = err.strerror or str(err)
        return
    # The kernel appends a new child to the end of its parent thread's list.
    pids = data.split()
    if pids:
        _known.add(int(pids[-1]))


def start() -> bool:
    """Begin recording the pids of children this process forks; False if already on."""
    if _state["on"]:
        return False
    _state.update(on=True, missed=0, why="", pid=os.getpid())
    if not _hooked:
        os.register_at_fork(after_in_parent=_note_fork)
        _hooked.append(True)
    for name, wrapper in _WRAPPERS.items():
        if getattr(os, name, None) is _real[name]:
            setattr(os, name, wrapper)
    return True


def stop() -> None:
    """Stop recording: the wrappers go (the hook stays registered, and does nothing)."""
    _state["on"] = False
    _known.clear()
    for name, wrapper in _WRAPPERS.items():
        if getattr(os, name, None) is wrapper:
            setattr(os, name, _real[name])


def forked() -> set[int]:
    """Pids of the children this process forked that have not been forgotten."""
    return _known


def forget(gone: set[int]) -> None:
    """Drop pids that have left the process tree (they may be reused)."""
    _known.difference_update(gone)


def missed() -> tuple[int, str]:
    """How many forks could not be recorded since the last call, and why; resets."""
    n, why = int(_state["missed"]), str(_state["why"])  # type: ignore[call-overload]
    _state.update(missed=0, why="")
    return n, why


def _popen_kinds() -> tuple[type, ...]:
    modules = ("subprocess", "multiprocessing.popen_fork")
    return tuple(sys.modules[m].Popen for m in modules if m in sys.modules)


def holders() -> dict[int, object]:
    """{pid: the live Popen object} for every subprocess.Popen and multiprocessing Popen
    object in this process whose process has not been waited for.

    Walks the garbage collector's objects: called only when a process is left after a
    test or an unknown zombie child is found, never on the path of a clean test.
    """
    kinds = _popen_kinds()
    if not kinds:
        return {}
    out: dict[int, object] = {}
    for obj in gc.get_objects():
        if isinstance(obj, kinds) and getattr(obj, "returncode", 0) is None:
            pid = getattr(obj, "pid", None)
            if isinstance(pid, int):
                out[pid] = obj
    return out


def held_by_python() -> set[int]:
    """Pids held by live subprocess.Popen and multiprocessing Popen objects."""
    return set(holders())


def let_owner_reap(obj: object) -> None:
    """Have a Popen object collect its own (dead) process, so it keeps the true status.

    ``subprocess.Popen.poll`` and multiprocessing's ``Popen.poll`` both wait without
    blocking and record the status (a signal shows as minus its number)."""
    poll = getattr(obj, "poll", None)
    if poll is None:
        return
    try:
        poll()
    except Exception:  # an owner half torn down; its process is reaped by pid instead
        pass
