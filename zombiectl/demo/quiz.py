"""Quiz mode (`zombiectl demo all --quiz`): predict each experiment's zombies, then see.

Before each experiment the quiz shows the lines of the strategy's code that decide the
answer and reads one prediction, a whole number in ASCII digits, from a line of input
(a terminal or a pipe alike, so a class can script it). An empty or malformed line is
a wrong answer; end of input makes every remaining question unanswered, and wrong.
Answers are scored against the observed count, not the model's.

This module is data only: `demo/cli.py` drives it and `demo/render_quiz.py` prints it.
"""

from __future__ import annotations

import inspect
import io
import tokenize
from dataclasses import dataclass
from typing import IO, Any

from zombiectl import validate
from zombiectl.demo.strategies.registry import COUNT_MAX, Strategy

# A lab function's lines that only talk to zombiectl (report, hold) decide nothing.
BOOKKEEPING = ("ctx.",)
# Nor do the server's safety rails (a cap on handlers, a report of each fork).
SERVER_RAILS = ("rails.", "handler_started(", "report_started(")
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


def python_excerpt(fn: Any, marks: tuple[str, ...] = BOOKKEEPING) -> str:
    """A function's body without comments or zombiectl's bookkeeping."""
    lines = inspect.getsource(fn).splitlines()
    body = inspect.cleandoc("\n".join(lines[1:]))  # the def line tells nothing
    code = [line.rstrip() for line in _strip_comments(body).splitlines() if line.strip()]
    return "\n".join(_fill_empty_blocks(_drop_bookkeeping(code, marks)))


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


def excerpt(strategy: Strategy) -> tuple[str, str]:
    """(language, code): the few lines that decide how many zombies are left."""
    if strategy.source_files is not None and strategy.name == "c":
        _name, text = strategy.source_files()[0]
        return "c", c_excerpt(text)
    if strategy.name == "server":  # the lab only starts the server: its loop decides
        from zombiectl.demo.server import echo

        return "python", python_excerpt(echo.serve, SERVER_RAILS)
    return "python", python_excerpt(strategy.source[0])
