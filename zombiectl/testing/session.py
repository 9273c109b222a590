"""Processes that belong to the whole test session, not to the test that started them.

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

Some processes outlive a test by design: multiprocessing's forkserver and
resource_tracker (started by whichever test first needs them), the workers of a
``concurrent.futures`` or loky process pool that a test keeps for reuse, anything a test
hands over with `keep`, and what the ini option ``zombies_ignore`` names. The leak check
never blames them on a test and never signals them; it lists them once, at the end of
the session.

`keep` works whether or not the check is on, and costs nothing: it records the pid and
the start time, so a later process that reuses the pid is not kept by mistake.
"""

from __future__ import annotations

import fnmatch
import gc
import sys
import types
from collections.abc import Iterable

from zombiectl.proc.files import pid_path

Key = tuple[int, int]  # (pid, start time in clock ticks after boot), as in tree.Key

_kept: dict[Key, str] = {}


def _starttime(pid: int) -> int | None:
    try:
        with open(pid_path(pid, "stat"), "rb") as f:
            raw = f.read(1024)
    except OSError:
        return None
    try:
        # Field 22; fields after the last ')' start at field 3.
        return int(raw[raw.rfind(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def keep(proc: object) -> None:
    """Hand a process to the test session: it is never blamed on a test or signalled.

    proc is a pid, or anything with a ``pid`` attribute (``subprocess.Popen``,
    ``multiprocessing.Process``, ``psutil.Process``). Its descendants go with it.
    Raises ValueError for something that names no process, and ProcessLookupError for a
    process that has gone.
    """
    pid = proc if isinstance(proc, int) else getattr(proc, "pid", None)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise ValueError(f"keep() takes a pid or a process object, not {proc!r}")
    start = _starttime(pid)
    if start is None:
        raise ProcessLookupError(f"keep(): no process {pid}")
    _kept[(pid, start)] = "handed to the session (keep)"


def kept() -> dict[Key, str]:
    return _kept


def _module_attr(suffix: str, *path: str) -> list[tuple[str, object]]:
    """(the module's top package, getattr chain) on every loaded module whose name ends
    with suffix (the stdlib's, and the copies loky and joblib carry)."""
    out = []
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == suffix.lstrip(".") or name.endswith(suffix)):
            continue
        obj: object = mod
        for attr in path:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        else:
            out.append((name.split(".")[0], obj))
    return out


def _executor_kinds() -> tuple[type, ...]:
    kinds: list[type] = []
    for _, cls in _module_attr(".process_executor", "ProcessPoolExecutor") + _module_attr(
        "concurrent.futures.process", "ProcessPoolExecutor"
    ):
        if isinstance(cls, type):
            kinds.append(cls)
    return tuple(kinds)


def long_lived() -> dict[int, str]:
    """{pid: why} for the processes that outlive tests by design, as this process knows
    them now: forkservers, resource trackers, and live process-pool executors' workers."""
    out: dict[int, str] = {}
    for top, pid in _module_attr("forkserver", "_forkserver", "_forkserver_pid"):
        if isinstance(pid, int):
            out[pid] = f"{top} forkserver"
    for top, pid in _module_attr("resource_tracker", "_resource_tracker", "_pid"):
        if isinstance(pid, int):
            out[pid] = f"{top} resource_tracker"
    kinds = _executor_kinds()
    if kinds:
        for obj in gc.get_objects():
            if isinstance(obj, kinds):
                procs = getattr(obj, "_processes", None)
                if isinstance(procs, dict):
                    kind = type(obj).__module__.split(".")[0]
                    for pid in procs:
                        if isinstance(pid, int):
                            out[pid] = f"worker of a {kind} process pool ({type(obj).__name__})"
    return out


def ignored(patterns: Iterable[str], name: str, cmdline: str) -> str | None:
    """The first pattern (fnmatch) that matches the process's name or command line."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(cmdline, pattern):
            return pattern
    return None


# Walking the objects a fixture's value refers to: never into modules, classes or
# functions (they lead to everything), and never further than this many objects.
_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
WALK_LIMIT = 50_000


def held_from(roots: Iterable[object], wanted: dict[int, object]) -> set[int]:
    """Which of wanted's owner objects ({pid: Popen}) can be reached from roots."""
    targets = {id(obj): pid for pid, obj in wanted.items()}
    found: set[int] = set()
    seen: set[int] = set()
    frontier = [r for r in roots if not isinstance(r, _SKIP)]
    while frontier and len(seen) < WALK_LIMIT:
        nxt: list[object] = []
        for obj in frontier:
            if id(obj) in seen:
                continue
            if len(seen) >= WALK_LIMIT:
                break
            seen.add(id(obj))
            if id(obj) in targets:
                found.add(targets[id(obj)])
                if len(found) == len(targets):
                    return found
            nxt.extend(o for o in gc.get_referents(obj) if not isinstance(o, _SKIP))
        frontier = nxt
    return found
