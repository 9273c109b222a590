"""Which of pytest's zombie children pytest itself started, and which it adopted.

The kernel keeps no trace of a zombie's first parent: a child pytest forked and never
waited for looks exactly like an orphan pytest adopted as a subreaper. Python does know
its own children, though:

- ``os.fork`` (and so multiprocessing's fork and forkserver-less starts): a fork hook in
  the child writes the child's pid to a pipe that pytest reads at each check;
- ``subprocess.Popen`` and multiprocessing's ``spawn``, which fork in C without running
  the hooks: the Popen objects (and multiprocessing's own Popen objects) hold the pid.

A zombie child found in neither is an adopted orphan. (A child made with
``os.posix_spawn`` and dropped is the one kind of leak this cannot tell from an orphan.)
"""

from __future__ import annotations

import os
import sys

_state: dict[str, int] = {}
_known: set[int] = set()


def _note_fork() -> None:
    """Runs in every child forked by this process (os.register_at_fork)."""
    w = _state.get("w")
    if w is None or os.getppid() != _state.get("parent"):
        return
    try:
        os.write(w, b"%d\n" % os.getpid())
    except OSError:  # pipe full: that child is then taken for an orphan
        pass


def start() -> bool:
    """Begin recording the pids of children this process forks; False if already on."""
    if "w" in _state:
        return False
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _state.update(r=r, w=w, parent=os.getpid())
    if not _state.get("hooked"):
        os.register_at_fork(after_in_child=_note_fork)
        _state["hooked"] = 1
    return True


def stop() -> None:
    """Stop recording and close the pipe (the fork hook stays, and does nothing)."""
    for end in ("r", "w"):
        fd = _state.pop(end, None)
        if fd is not None:
            os.close(fd)


def forked() -> set[int]:
    """Pids of the children this process forked that have not been forgotten."""
    r = _state.get("r")
    while r is not None:
        try:
            chunk = os.read(r, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        _known.update(int(x) for x in chunk.split())
    return _known


def forget(gone: set[int]) -> None:
    """Drop pids that have left the process tree (they may be reused)."""
    _known.difference_update(gone)


def held_by_python() -> set[int]:
    """Pids held by subprocess.Popen and multiprocessing Popen objects in this process.

    Walks the garbage collector's objects: called only when an unknown zombie child
    is found, never on the path of a clean test.
    """
    import gc

    modules = ("subprocess", "multiprocessing.popen_fork")
    kinds = tuple(sys.modules[m].Popen for m in modules if m in sys.modules)
    if not kinds:
        return set()
    out = set()
    for obj in gc.get_objects():
        if isinstance(obj, kinds):
            pid = getattr(obj, "pid", None)
            if isinstance(pid, int):
                out.add(pid)
    return out
