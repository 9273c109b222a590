"""The strategy registry: name -> Strategy, found by scanning this package.

How a new strategy plugs in
---------------------------
Add one module to ``zombiectl/demo/strategies/`` that defines ``STRATEGY = Strategy(...)``;
nothing else needs editing (the registry imports every module of the package and keeps
those with a ``STRATEGY``). The module holds two kinds of code:

* The **lab function**, ``def lab(ctx: LabContext, p: SimpleNamespace) -> None``, named by
  ``entry="zombiectl.demo.strategies.mine:lab"``. It runs inside the lab parent (a fresh
  interpreter, a child of zombiectl, leader of its own process group) with ``p`` holding
  the parameters (``p.count``, ``p.interval``, ``p.start_method``, your options...). It
  starts children and reports each with ``ctx.started(pid)``, calls ``ctx.done()`` after
  its last start, and ends with ``ctx.hold()`` (report "settled", then linger until
  zombiectl ends the lab). ``ctx.note(text)`` shows a line to the user;
  ``ctx.report(echoes_ok=3, ...)`` adds fields to the summary. It must not change its
  process group or session, and must never clean up: zombiectl counts, then ends and
  collects every process the lab made. Raising is fine: zombiectl cleans up and reports the error
  (``OSError`` EAGAIN/ENOMEM from a fork reads as "out of processes"). Keep its imports
  light (no click, rich, psutil): it is also the code ``explain`` shows.
* The **description** used by zombiectl itself: ``model`` (the zombie count expected
  when the lab has settled, from the parameters and the start method; ``None`` when the
  strategy makes no prediction), ``why``/``fix`` text and ``source`` (the objects whose
  real source ``explain`` shows), ``uses`` (which common options apply), ``defaults``
  (overrides of the common defaults), ``options`` (strategy-specific options such as
  ``--reap``), ``until_interrupted(p)`` (the lab serves until Ctrl-C, which then counts
  as a normal end) and ``prepare(p)`` (runs in zombiectl before the lab starts, e.g. to
  build a C program; it may raise a ``zombiectl.errors`` error, and returns the
  parameters, possibly with more added).

Example (the whole of a minimal strategy)::

    def lab(ctx, p):
        for _ in range(p.count):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            ctx.started(pid)
        ctx.done()
        ctx.hold()

    STRATEGY = Strategy(
        name="mine", title="fork, never wait", entry=f"{__name__}:lab",
        model=lambda p, method: p.count, why="...", fix="...", source=(lab,),
    )
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from zombiectl.errors import BadUsage

# The options every strategy may use, with the defaults a strategy can override.
COMMON_DEFAULTS: dict[str, Any] = {
    "count": 5,
    "interval": 0.5,
    "lifetime": 0.2,
    "gap": 1.0,
    "hold": 1.0,
    "start_method": None,  # None: the platform's default, resolved before the lab starts
}
COUNT_MAX = 10000
START_METHODS = ("fork", "spawn", "forkserver")

Model = Callable[[SimpleNamespace, "str | None"], "int | None"]


@dataclass(frozen=True)
class Option:
    """A strategy-specific command-line option (``demo server --reap sigchld``)."""

    flag: str
    default: Any
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    metavar: str | None = None
    shapes_count: bool = False  # the zombie count depends on it: headers and quiz show it

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Strategy:
    name: str
    title: str
    entry: str
    model: Model
    why: str
    fix: str
    source: tuple[Any, ...] = ()
    kind: str = "leak"  # "leak" or "remedy"
    experiment: str | None = None  # "S1".."S5" for the post's experiments
    uses: frozenset[str] = frozenset({"count", "interval", "lifetime"})
    defaults: Mapping[str, Any] = field(default_factory=dict)
    options: tuple[Option, ...] = ()
    until_interrupted: Callable[[SimpleNamespace], bool] = lambda p: False
    prepare: Callable[[SimpleNamespace], SimpleNamespace] | None = None
    model_text: str = ""
    # One line of why for a run's summary, from its parameters (default: model_text).
    reason: Callable[[SimpleNamespace, str | None], str] | None = None
    cpython: tuple[str, ...] = ()  # dotted names of CPython code explain also shows
    # Source files explain shows besides `source` (a C program): () -> [(file name, text)]
    source_files: Callable[[], list[tuple[str, str]]] | None = None
    order: int = 100

    @property
    def uses_start_method(self) -> bool:
        return "start_method" in self.uses

    def params(self, given: Mapping[str, Any]) -> SimpleNamespace:
        """Every parameter the lab function sees: common defaults, ours, then `given`."""
        values: dict[str, Any] = dict(COMMON_DEFAULTS)
        values.update(self.defaults)
        for opt in self.options:
            values[opt.dest] = opt.default
        values.update({k: v for k, v in given.items() if v is not None})
        return SimpleNamespace(**values)

    def expected(self, p: SimpleNamespace, start_method: str | None) -> int | None:
        return self.model(p, start_method)

    def why_line(self, p: SimpleNamespace, start_method: str | None) -> str:
        if self.reason is not None:
            return self.reason(p, start_method)
        return self.model_text


_REGISTRY: dict[str, Strategy] | None = None


def _load() -> dict[str, Strategy]:
    global _REGISTRY
    if _REGISTRY is None:
        import zombiectl.demo.strategies as package

        found: list[Strategy] = []
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or info.name == "registry":
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            strategy = getattr(module, "STRATEGY", None)
            if isinstance(strategy, Strategy):
                found.append(strategy)
        found.sort(key=lambda s: (s.order, s.name))
        _REGISTRY = {s.name: s for s in found}
    return _REGISTRY


def all_strategies() -> list[Strategy]:
    return list(_load().values())


def names() -> list[str]:
    return list(_load())


def get(name: str) -> Strategy:
    """The strategy called name; BadUsage (exit 2) listing the names otherwise."""
    strategy = _load().get(name)
    if strategy is None:
        raise BadUsage(f"unknown strategy {name!r}; choose from: {', '.join(names())}, all")
    return strategy


def default_start_method() -> str:
    """The platform's multiprocessing default (fork on Linux up to 3.13, forkserver from 3.14)."""
    import multiprocessing

    return str(multiprocessing.get_context().get_start_method())


def resolve_start_method(strategy: Strategy, given: str | None) -> str | None:
    if not strategy.uses_start_method:
        return None
    return given or default_start_method()
