"""rich renderables for `zombiectl reap`: the plan before acting, the results after."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.reaping.ladder import (
    DENIED,
    REAPED,
    REFUSED,
    ParentPlan,
    Plan,
    ReapReport,
    stops_text,
)
from zombiectl.ui.cells import format_pids, plural
from zombiectl.ui.safe import data
from zombiectl.ui.tables import parents_table
from zombiectl.untrusted import display

RESULT_STYLE = {REAPED: "green", REFUSED: "yellow", DENIED: "red"}


def plan_steps_text(plan: Plan, parent: ParentPlan | None = None) -> str:
    text = "SIGCHLD (again while it reaps)"
    for step in plan.steps(parent)[1:]:
        text += f", then {step}"
    if parent is not None and parent.end_refused is not None:
        text += f"; never SIGTERM or SIGKILL: it is {parent.end_refused}"
    if parent is not None and parent.stops_container is not None:
        stops = stops_text(parent.stops_container)
        if stops not in text:
            text += f"; {stops}"
    return text


def plan_table(plan: Plan) -> RenderableType:
    """What reap is about to do, per parent."""
    table = parents_table()
    table.add_column("CONTAINER", overflow="fold")
    table.add_column("PLAN", overflow="fold")
    for p in plan.parents:
        if p.refused is not None:
            what = data(f"refuse: {p.refused}", style="yellow")
        elif not p.actionable:
            what = data(p.note or "nothing to do: no zombies", style="dim")
        else:
            what = data(plan_steps_text(plan, p) + (f" ({p.note})" if p.note else ""))
        pids = format_pids(list(p.zombie_pids), 4)
        where = data("-" if p.container is None else p.container)
        table.add_row(str(p.pid), data(p.name), data(p.user), str(p.zombies), pids, where, what)
    n = len(plan.actionable)
    zombies = sum(p.zombies for p in plan.actionable)
    footer = Text(
        f"plan: act on {plural(n, 'parent')} holding {plural(zombies, 'zombie')}, "
        f"waiting up to {plan.timeout:g}s for each step",
        style="dim",
    )
    return Group(table, footer)


def consent_question(plan: Plan, shown: int = 3) -> str:
    """The yes/no question before acting, naming the parents it will signal (one line)."""
    parents = plan.actionable
    who = [f"{p.pid} ({display(p.name)})" for p in parents[:shown]]
    if len(parents) > shown:
        who.append(f"{len(parents) - shown} more")
    return f"Signal {plural(len(parents), 'parent')}: {', '.join(who)}?"


def report_table(report: ReapReport) -> RenderableType:
    """Zombies before and after, per parent, with what was done and why it ended so."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("PARENT", justify="right")
    table.add_column("NAME", overflow="fold")
    table.add_column("BEFORE", justify="right")
    table.add_column("AFTER", justify="right")
    table.add_column("ACTIONS")
    table.add_column("RESULT")
    table.add_column("WHY", overflow="fold")
    for p in report.parents:
        actions = ", ".join(
            f"SIGCHLD x{p.sigchld_sent}" if a == "SIGCHLD" and p.sigchld_sent > 1 else a
            for a in p.actions
        )
        table.add_row(
            str(p.pid),
            data(p.name),
            str(p.zombies_before),
            str(p.zombies_after),
            data(actions or "-"),
            Text(p.result, style=RESULT_STYLE.get(p.result, "bold red")),
            data(p.reason),
        )
    return Group(table, Text(report_footer(report), style="dim"))


def report_footer(report: ReapReport) -> str:
    if report.dry_run:
        return "dry run: nothing was signalled"
    text = f"reaped {plural(report.reaped, 'zombie')}"
    if report.remaining:
        left = {p.pid for p in report.parents if p.zombies_after}
        text += f"; {report.remaining} remain under {plural(len(left), 'parent')}"
    return text
