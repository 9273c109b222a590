"""Rendering of `zombiectl doctor --containers`: a table of inits, then advice."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from zombiectl.doctor.containers import ContainersReport, InitAudit
from zombiectl.listing.render_text import container_title
from zombiectl.untrusted import display

VERDICTS = {
    "reaps": ("reaps", "green"),
    "slow": ("slow", "yellow"),
    "never": ("NO", "bold red"),
    "unknown": ("unknown", "yellow"),
}


def advice(a: InitAudit) -> str | None:
    """What to do about one container's PID 1; None when nothing is needed."""
    name = display(a.container.id)
    if a.reaps is False:
        return (
            f"{name}: PID 1 ({display(a.init)}) does not reap. Restart the container with an "
            "init as its entry point: `docker run --init` (or your runtime's init option), "
            "`tini -s --`, or `zombiectl run --`. Do not `reap --pid` its PID 1: killing a "
            "container's PID 1 ends the whole container."
        )
    if a.verdict == "slow":
        return (
            f"{name}: PID 1 ({display(a.init)}) reaps, but late: orphans stay zombies between "
            "its rounds. An init that waits for SIGCHLD (`--init`, tini) reaps at once."
        )
    if a.reaps is None:
        return (
            f"{name}: cannot tell whether PID 1 ({display(a.init)}) reaps orphans "
            "(`--probe`, as root, tells). If it is your application, put an init in front "
            "of it (`--init`, tini, `zombiectl run --`)."
        )
    return None


def containers_view(report: ContainersReport) -> RenderableType:
    if not report.audits:
        return Text("No container here: no PID namespace other than this one has a visible PID 1.")
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("CONTAINER", overflow="fold")
    table.add_column("RUNTIME")
    table.add_column("PID 1", overflow="fold")
    table.add_column("REAPS", no_wrap=True)
    table.add_column("ZOMBIES", justify="right")
    table.add_column("EVIDENCE", overflow="fold")
    for a in report.audits:
        word, style = VERDICTS[a.verdict]
        init = Text(f"{a.container.init_pid} ")
        init.append(display(a.init))
        table.add_row(
            Text(display(container_title(a.container))),
            a.container.runtime or "-",
            init,
            Text(word, style=style),
            f"{a.zombies} (PID 1: {a.init_zombies})",
            Text(display(a.evidence)),
        )
    tips = [t for t in (advice(a) for a in report.audits) if t]
    if not tips:
        return Group(table, Text("\nEvery container's PID 1 reaps.", style="green"))
    return Group(table, Text("\nAdvice", style="bold"), *(Text(f"- {t}") for t in tips))
