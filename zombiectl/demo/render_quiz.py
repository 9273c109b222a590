"""What the quiz shows: the question (code and parameters), the verdict, the score.

Questions go to a Console (stdout, or stderr with --json); with --json, stdout carries
only the answer lines and the final score line.
"""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from zombiectl.demo.model import LabSpec
from zombiectl.demo.quiz import Reply, Result, question_title
from zombiectl.demo.render import settings_text
from zombiectl.stdout import write

PROMPT = "How many zombies will be left at the end? "


def ask(console: Console, n: int, total: int, spec: LabSpec, code: tuple[str, str]) -> None:
    language, text = code
    title = question_title(spec.strategy)
    if spec.label:  # the experiment's name in the post (S5), which tells nothing
        title = f"{spec.label}: {title}"
    console.print(Text(f"Question {n}/{total}: {title}", style="bold"))
    settings = settings_text(spec.settings)
    if spec.start_method:
        settings += f"{', ' if settings else ''}start method {spec.start_method}"
    if settings:
        console.print(Text(f"With {settings}:", style="dim"))
    if console.is_terminal:
        console.print(Syntax(text, language, theme="ansi_dark"))
    else:
        console.out(text, highlight=False)
    console.print(Text(PROMPT), end="")
    console.file.flush()


def heard(console: Console, reply: Reply) -> None:
    """Echo what was read when it did not come from a terminal, so a transcript reads well."""
    if reply.eof:
        console.print(Text("(end of input)", style="dim"))
    elif not console.is_terminal:
        console.print(Text(reply.text or ""))
    if reply.problem:
        console.print(Text(reply.problem, style="yellow"))


def verdict(console: Console, result: Result, shown_reason: bool = False) -> None:
    expected = "-" if result.expected is None else str(result.expected)
    if result.correct:
        left = "zombie" if result.observed == 1 else "zombies"
        line = Text(f"✓ right: {result.observed} {left} left", style="green")
    else:
        guess = "no answer" if result.predicted is None else f"you said {result.predicted}"
        line = Text(f"✗ {guess}; observed {result.observed}", style="bold red")
    line.append(f" (the model: {expected})", style="")
    console.print(line)
    if not shown_reason:  # the run's own verdict line has already said why
        console.print(Text(f"  {result.reason}"))
    console.print()


def score_line(correct: int, questions: int) -> str:
    return f"score {correct}/{questions}"


def put_json(out: IO[str], obj: dict[str, Any]) -> None:
    write(json.dumps(obj) + "\n", out)
