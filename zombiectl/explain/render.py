"""`explain`'s output: highlighted code on a terminal, plain text elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from zombiectl.explain.model import (
    THE_POST,
    ZOMBIE,
    CodeBlock,
    OverviewRow,
    StrategyExplanation,
    python_version,
)


def _code(console: Console, block: CodeBlock) -> None:
    comment = "//" if block.language == "c" else "#"
    console.print(Text(f"{comment} {block.title}", style="dim"))
    if console.is_terminal:
        console.print(Syntax(block.text, block.language, theme="ansi_dark", word_wrap=True))
    else:
        console.out(block.text.rstrip("\n"), highlight=False)
    console.print()


def _para(console: Console, heading: str, text: str) -> None:
    console.print(Text(heading, style="bold"))
    # Piped, a paragraph is one line: the reader's pager or program decides where to wrap.
    console.print(Text(text), soft_wrap=not console.is_terminal)
    console.print()


def render_strategy(console: Console, ex: StrategyExplanation) -> None:
    s = ex.strategy
    tag = f" ({s.experiment})" if s.experiment else f" ({s.kind})"
    console.print(Text(f"{s.name}{tag}: {s.title}", style="bold"))
    console.print()
    console.print(
        Text(
            f"The code (it runs in the lab parent; zombiectl demo {s.name} runs it):", style="bold"
        )
    )
    for block in ex.code:
        _code(console, block)
    if ex.cpython:
        console.print(
            Text(f"What it relies on, from this Python ({python_version()}):", style="bold")
        )
        for block in ex.cpython:
            _code(console, block)
    _para(console, "Why:", s.why)
    model = s.model_text
    if ex.expected_default is not None:
        via = f" (start method {ex.default_method})" if ex.default_method else ""
        model += f" With the defaults{via}: {ex.expected_default}."
    _para(console, "The model:", model)
    _para(console, "The fix:", s.fix)


def render_overview(console: Console, rows: list[OverviewRow]) -> None:
    _para(console, "What a zombie is:", ZOMBIE)
    _para(console, "The post's experiments (S1-S5), and the answer:", THE_POST)
    table = Table(
        header_style="bold", title="Strategies (zombiectl demo NAME)", title_justify="left"
    )
    table.add_column("name")
    table.add_column("post")
    table.add_column("kind")
    table.add_column("zombies at the end (defaults)")
    table.add_column("what it does", overflow="fold")
    for r in rows:
        table.add_row(*(Text(cell) for cell in (r.name, r.experiment, r.kind, r.expected, r.title)))
    console.print(table)
    console.print()
    console.print(Text("zombiectl explain NAME shows a strategy's code, its model and the fix."))
