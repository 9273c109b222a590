"""What `explain` says, as data: the overview, and per strategy its real code and model.

The code shown is the code that runs: ``inspect.getsource`` of the strategy's lab
function, the bundled C source, and the CPython functions that do the reaping, read
from the interpreter running zombiectl (so the text matches this Python's version).
"""

from __future__ import annotations

import importlib
import inspect
import platform
from dataclasses import dataclass
from typing import Any

from zombiectl.demo.strategies import registry
from zombiectl.demo.strategies.registry import Strategy

ZOMBIE = (
    "A zombie is a process that has exited but whose parent has not yet collected its "
    "exit status with wait(), waitpid() or waitid(). The kernel has freed its memory and "
    "files; what remains is its entry in the process table: pid, exit status, resource "
    "usage. ps shows it in state Z, as <defunct>. A zombie cannot be killed (it is "
    "already dead): it goes away when its parent reaps it, or when the parent exits and "
    "the orphan is adopted by init (PID 1) or the nearest child subreaper, which reaps it. "
    "A few zombies are harmless; a parent that keeps making them exhausts pids and the "
    "process limit, and then fork() fails for everyone."
)

THE_POST = (
    "A blog post, \u201cpython3 多进程 multiprocessing对僵尸进程的处理\u201d (\u201cPython 3 "
    "multiprocessing and how it handles zombie processes\u201d), asked a puzzle. Its C loop (fork, never wait) piles up zombies (S1). Its Python "
    "loop, Process(...).start() every second, shows only one zombie at a time (S2), "
    "because start() first calls multiprocessing.process._cleanup(), which polls every "
    "tracked child with os.waitpid(pid, os.WNOHANG) and so reaps those that have exited. "
    "One Process followed by a long sleep keeps its zombie (S3): nothing polls. Three "
    "starts with sleep(3) between them leave one zombie (S4) and three starts with no "
    "sleep leave three (S5). The open question, why sleep matters, has a plain answer: "
    "it is timing, not sleep. WNOHANG reaps only a child that has already exited when "
    "start() runs. With the sleeps, each earlier child had finished by the next start(); "
    "back to back, all were still running, so nothing was reaped, and after the last "
    "start() nothing polled again. With the forkserver start method (the Linux default "
    "from Python 3.14) workers are the fork server's children and it reaps them at once: "
    "no zombies under your process at all."
)


@dataclass(frozen=True)
class CodeBlock:
    title: str
    language: str
    text: str


@dataclass(frozen=True)
class StrategyExplanation:
    strategy: Strategy
    code: list[CodeBlock]
    cpython: list[CodeBlock]
    expected_default: int | None
    default_method: str | None

    @property
    def name(self) -> str:
        return self.strategy.name


@dataclass(frozen=True)
class OverviewRow:
    name: str
    experiment: str
    kind: str
    expected: str
    title: str


def _getsource(obj: Any) -> str:
    return _dedent(inspect.getsource(obj))


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).rstrip() + "\n"


def resolve_dotted(name: str) -> Any:
    """multiprocessing.process.BaseProcess.start -> the function object."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def explain_strategy(name: str) -> StrategyExplanation:
    strategy = registry.get(name)
    code = [
        CodeBlock(f"{obj.__module__}.{obj.__qualname__}", "python", _getsource(obj))
        for obj in strategy.source
    ]
    if strategy.source_files is not None:
        for title, text in strategy.source_files():
            lang = "c" if title.endswith(".c") else "python"
            code.append(CodeBlock(title, lang, text))
    cpython = []
    for dotted in strategy.cpython:
        try:
            cpython.append(CodeBlock(dotted, "python", _getsource(resolve_dotted(dotted))))
        except (ImportError, AttributeError, OSError, TypeError):
            continue
    method = registry.resolve_start_method(strategy, None)
    expected = strategy.expected(strategy.params({}), method)
    return StrategyExplanation(strategy, code, cpython, expected, method)


def overview_rows() -> list[OverviewRow]:
    rows = []
    for s in registry.all_strategies():
        method = registry.resolve_start_method(s, None)
        expected = s.expected(s.params({}), method)
        exp_text = "-" if expected is None else str(expected)
        if s.uses_start_method:
            forkserver = s.expected(s.params({}), "forkserver")
            if forkserver != expected:
                exp_text += f" ({method}); {forkserver} (forkserver)"
        rows.append(OverviewRow(s.name, s.experiment or "", s.kind, exp_text, s.title))
    return rows


def python_version() -> str:
    return platform.python_version()
