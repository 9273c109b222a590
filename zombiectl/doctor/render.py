"""rich renderables for `zombiectl doctor`: one row per finding, then the advice."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.doctor.probes import Diagnosis
from zombiectl.untrusted import display

MARKS = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "bad": ("BAD", "bold red"),
         "info": ("info", "cyan")}  # fmt: skip


def findings_table(report: Diagnosis) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("CHECK")
    table.add_column("", no_wrap=True)
    table.add_column("FINDING", overflow="fold")
    for f in report.findings:
        word, style = MARKS.get(f.status, (f.status, ""))
        # Summaries quote process names and command lines: never markup, no raw control.
        table.add_row(f.check, Text(word, style=style), Text(display(f.summary)))
    return table


def advice_table(report: Diagnosis) -> Table:
    tips = Table(box=None, show_header=False, pad_edge=False, show_edge=False)
    tips.add_column(no_wrap=True)
    tips.add_column(overflow="fold")
    for f in report.findings:
        if f.advice:
            tips.add_row(f"- {f.check}:", Text(display(f.advice)))
    return tips


def render(report: Diagnosis) -> RenderableType:
    """The findings, the advice, and a last line that matches the exit code."""
    parts: list[RenderableType] = [findings_table(report)]
    if any(f.advice for f in report.findings):
        parts.extend([Text("\nAdvice", style="bold"), advice_table(report)])
    else:
        parts.append(Text("\nNothing to fix: orphans are reaped promptly here.", style="green"))
    bad = report.bad
    if bad:
        checks = ", ".join(f.check for f in bad)
        parts.append(Text(f"\nbad: {checks} (exit 1)", style="bold red"))
    return Group(*parts)
