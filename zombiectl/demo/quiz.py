"""Quiz mode (`zombiectl demo all --quiz`): predict each experiment's zombies, then see.

Before each experiment the quiz shows the lines of the strategy's code that decide the
answer, as a student would write them (the demo's own scaffolding hidden, or marked
where the code needs it), under a title that names what the code uses, never what it
does wrong, and reads one prediction, a whole number in ASCII digits, from a line of input
(a terminal or a pipe alike, so a class can script it). An empty or malformed line is
a wrong answer; end of input makes every remaining question unanswered, and wrong.
Answers are scored against the observed count, not the model's.

This module is data only: `demo/cli.py` drives it and `demo/render_quiz.py` prints it.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass
from typing import IO, Any

from zombiectl import validate
from zombiectl.demo.strategies.registry import COUNT_MAX, Strategy

# A lab function's lines that only talk to zombiectl (report, hold) decide nothing, nor
# do the waits that only make the demo's timing certain (a student would sleep).
BOOKKEEPING = ("ctx.", "wait_exited(", "wait_exited_unreaped(")
# Nor do the server's safety rails (a cap on handlers, a report of each fork).
SERVER_RAILS = ("rails.", "handler_started(", "report_started(", "server = os.getpid()")
# Names of the demo's machinery that the code cannot do without: those lines are marked.
SCAFFOLDING = re.compile(r"\b(release|die_with_parent|context)\b")
SCAFFOLDING_MARK = "  # demo scaffolding"
# Question titles name what the code uses, never whether it reaps.
QUESTION_TITLES = {
    "fork": "children made with os.fork()",
    "c": "a C program that forks",
    "mp": "multiprocessing.Process objects started in a loop",
    "mp-single": "one multiprocessing.Process",
    "interleaved": "multiprocessing children started with a gap between them",
    "subprocess": "subprocess.Popen objects",
    "pool-close": "a multiprocessing.Pool",
    "wait": "os.fork() and os.waitpid()",
    "sigchld": "a SIGCHLD handler",
    "ignore": "SIGCHLD's disposition",
    "double-fork": "a process that forks twice",
    "active-children": "multiprocessing.active_children()",
    "server": "a forking TCP echo server",
}
# In the C program, blocks that only report, check or print decide nothing either.
C_SKIP_BLOCKS = ("if (pid < 0)", "if (report_fd >= 0)", "#ifdef")
C_SKIP_LINES = ("printf(", "fflush(", "pids[i] = pid;")


@dataclass(frozen=True)
class Reply:
    """One line of input, understood: a prediction, garbage, or the end of input."""

    predicted: int | None
    text: str | None  # the line as typed (None at end of input)

    @property
    def eof(self) -> bool:
        return self.text is None

    @property
    def problem(self) -> str | None:
        if self.eof:
            return "no answer (end of input): counted as wrong"
        if self.predicted is None:
            return f"{self.text!r} is not a whole number from 0 to {COUNT_MAX}: counted as wrong"
        return None


@dataclass(frozen=True)
class Result:
    strategy: str
    label: str
    predicted: int | None
    observed: int
    expected: int | None
    reason: str

    @property
    def correct(self) -> bool:
        return self.predicted is not None and self.predicted == self.observed

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event": "answer",
            "strategy": self.strategy,
            "predicted": self.predicted,
            "observed": self.observed,
            "expected": self.expected,
            "correct": self.correct,
        }
        if self.label != self.strategy:
            d["experiment"] = self.label
        return d


def parse_answer(line: str) -> int | None:
    """The prediction on one line, or None: ASCII digits only (`٣` is not an answer)."""
    try:
        return validate.whole(line.strip(), minimum=0, maximum=COUNT_MAX)
    except validate.InvalidValue:
        return None


def read_reply(stream: IO[str]) -> Reply:
    line = stream.readline()
    if not line:
        return Reply(None, None)
    text = line.rstrip("\r\n")
    return Reply(parse_answer(text), text)


def score_dict(results: list[Result], questions: int) -> dict[str, Any]:
    return {
        "event": "score",
        "correct": sum(r.correct for r in results),
        "questions": questions,
    }


# --------------------------------------------------------------------------- the code shown


def _strip_comments(source: str) -> str:
    """The source without its comments (they would give the answer away)."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type != tokenize.COMMENT
    ]
    return str(tokenize.untokenize(tokens))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _drop_bookkeeping(lines: list[str], marks: tuple[str, ...]) -> list[str]:
    """Drop each line that only serves zombiectl, with the block it opens, if any."""
    kept: list[str] = []
    skip_deeper_than: int | None = None
    for line in lines:
        depth = _indent(line)
        if skip_deeper_than is not None:
            if depth > skip_deeper_than:
                continue
            skip_deeper_than = None
        if any(mark in line for mark in marks):
            if line.rstrip().endswith((":", "(")):
                skip_deeper_than = depth
            continue
        kept.append(line)
    return kept


def _fill_empty_blocks(lines: list[str]) -> list[str]:
    """A block left empty: a loop that only reported goes; any other block gets `pass`."""
    out: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.rstrip().endswith(":") and (not nxt or _indent(nxt) <= _indent(line)):
            if line.lstrip().startswith(("for ", "while ")):
                continue
            out += [line, " " * (_indent(line) + 4) + "pass"]
            continue
        out.append(line)
    return out


def question_title(strategy: Strategy) -> str:
    return QUESTION_TITLES.get(strategy.name, "an experiment")


def _mark_scaffolding(lines: list[str]) -> list[str]:
    return [line + SCAFFOLDING_MARK if SCAFFOLDING.search(line) else line for line in lines]


def python_excerpt(fn: Any, marks: tuple[str, ...] = BOOKKEEPING) -> str:
    """A function's body without comments or zombiectl's bookkeeping."""
    lines = inspect.getsource(fn).splitlines()
    body = inspect.cleandoc("\n".join(lines[1:]))  # the def line tells nothing
    code = [line.rstrip() for line in _strip_comments(body).splitlines() if line.strip()]
    return "\n".join(_mark_scaffolding(_fill_empty_blocks(_drop_bookkeeping(code, marks))))


# --------------------------------------------------------------------------- the server's code


def _reap_test(test: ast.expr, reap: str) -> tuple[bool | None, ast.expr | None]:
    """What `test` is for this reap mode: (True/False, None) when it is decided by it,
    else (None, the test with its decided parts removed)."""
    if (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "reap"
        and len(test.ops) == 1
        and isinstance(test.comparators[0], ast.Constant)
    ):
        same = test.comparators[0].value == reap
        if isinstance(test.ops[0], ast.Eq):
            return same, None
        if isinstance(test.ops[0], ast.NotEq):
            return not same, None
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        left = []
        for value in test.values:
            known, rest = _reap_test(value, reap)
            if known is False:
                return False, None
            if known is None:
                left.append(rest if rest is not None else value)
        if not left:
            return True, None
        return None, left[0] if len(left) == 1 else ast.BoolOp(ast.And(), left)
    return None, test


def _specialise(stmts: list[ast.stmt], reap: str) -> list[ast.stmt]:
    """The statements as they run with this reap mode: branches on `reap` resolved."""
    out: list[ast.stmt] = []
    for stmt in stmts:
        if isinstance(stmt, ast.If):
            known, test = _reap_test(stmt.test, reap)
            if known is True:
                out += _specialise(stmt.body, reap)
                continue
            if known is False:
                out += _specialise(stmt.orelse, reap)
                continue
            assert test is not None
            stmt.test = test
            stmt.body = _specialise(stmt.body, reap) or [ast.Pass()]
            stmt.orelse = _specialise(stmt.orelse, reap)
        elif isinstance(stmt, (ast.While, ast.For, ast.With, ast.Try)):
            stmt.body = _specialise(stmt.body, reap)
        out.append(stmt)
    return out


def server_excerpt(reap: str) -> str:
    """The echo server's loop as it runs with --reap `reap`, and its SIGCHLD handler."""
    from zombiectl.demo.server import echo

    fn = ast.parse(textwrap.dedent(inspect.getsource(echo.serve))).body[0]
    assert isinstance(fn, ast.FunctionDef)
    body = "\n".join(ast.unparse(stmt) for stmt in _specialise(fn.body, reap))
    lines = [line.rstrip() for line in body.splitlines() if line.strip()]
    code = "\n".join(_fill_empty_blocks(_drop_bookkeeping(lines, SERVER_RAILS)))
    handler = {"sigchld": echo.reap_children, "wait-once": echo.reap_one}.get(reap)
    if handler is None:
        return code
    source = _strip_comments(textwrap.dedent(inspect.getsource(handler)))
    defined = "\n".join(line.rstrip() for line in source.splitlines() if line.strip())
    return f"{defined}\n\n{code}"


def c_excerpt(source: str) -> str:
    """The fork loop of the C program and what follows it, without the reporting."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("for (i = 0")), 0)
    kept: list[str] = []
    skip_until_depth: int | None = None
    depth = 0
    for line in lines[start:]:
        text = line.strip()
        if skip_until_depth is None and text.startswith(C_SKIP_BLOCKS):
            skip_until_depth = depth
            if text.startswith("#ifdef"):
                skip_until_depth = -1
        if skip_until_depth == -1:
            if text.startswith("#endif"):
                skip_until_depth = None
            continue
        depth += line.count("{") - line.count("}")
        if skip_until_depth is not None:
            if depth <= skip_until_depth and ("}" in line or "{" not in line):
                skip_until_depth = None
            continue
        if text.startswith(C_SKIP_LINES) or "report(" in text:
            continue
        kept.append(line.split("/*")[0].rstrip() if "/*" in line else line.rstrip())
    while kept and kept[-1].strip() in ("", "}"):
        kept.pop()
    return "\n".join(line[4:] if line.startswith("    ") else line for line in kept if line)


def excerpt(strategy: Strategy, params: Any = None) -> tuple[str, str]:
    """(language, code): the few lines that decide how many zombies are left.

    params: the run's parameters, which pick the server's reap mode (default: none).
    """
    if strategy.source_files is not None and strategy.name == "c":
        _name, text = strategy.source_files()[0]
        return "c", c_excerpt(text)
    if strategy.name == "server":  # the lab only starts the server: its loop decides
        return "python", server_excerpt(getattr(params, "reap", "none"))
    return "python", python_excerpt(strategy.source[0])
