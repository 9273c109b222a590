"""`zombiectl reap`: clear zombies safely, by nudging (or, if asked, ending) their parents.

$ zombiectl reap --pid 845235 --dry-run
PARENT  NAME    USER  ZOMBIES  ZOMBIE PIDS                         PLAN
845235  python  root        6  845236 845237 845238 845239 … (+2)  SIGCHLD (again while it reaps)
plan: act on 1 parent holding 6 zombies, waiting up to 2s for each step
dry run: nothing was signalled
$ zombiectl reap --pid 845235 --yes
PARENT  NAME    BEFORE  AFTER  ACTIONS     RESULT  WHY
845235  python       6      0  SIGCHLD x6  reaped  the parent reaped them after 6 SIGCHLDs
reaped 6 zombies
"""

from __future__ import annotations

import json
import sys

import click

from zombiectl.errors import BadUsage, Interrupted, signum_of
from zombiectl.proc.identity import pidfd_supported
from zombiectl.reaping.ladder import Plan, ReapReport, execute, make_plan, planned_report
from zombiectl.stdout import write
from zombiectl.ui.options import (
    PID,
    Seconds,
    console_for_stderr,
    console_for_stdout,
    sigterm_raises,
)


@click.command(
    "reap",
    epilog="""\b
Examples:
  zombiectl reap --pid 4242              show the plan, ask, then nudge 4242 with SIGCHLD
  zombiectl reap --zombie 4250 --yes     act on 4250's parent without asking
  zombiectl reap --all --dry-run         plan for every parent that holds zombies
  zombiectl reap --pid 4242 --kill-parent --force --yes --json
                                         end the parent (TERM, then KILL) so that
                                         init or the nearest subreaper reaps its zombies
\b
Never signalled: PID 1, kernel threads, zombiectl itself and its ancestors (your
shell, tmux, sshd). The init of another PID namespace (a container's PID 1) is
nudged with SIGCHLD but never sent SIGTERM or SIGKILL. A container's main process
(the one child of tini, dumb-init, …) is ended only with --stop-container. Signals go through a pidfd,
after checking that the parent is still the one planned (same start time), so a
reused pid is never signalled.
Exit: 0 every targeted zombie is gone, 1 some remain or were refused, 2 no consent
(not a terminal and no --yes, or "n" at the prompt), 3 no such process, 4 permission
denied, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
""",
)
@click.option("--pid", "parents", type=PID, multiple=True, help="A parent of zombies (repeatable).")
@click.option(
    "--zombie", "zombies", type=PID, multiple=True, help="A zombie: act on its parent (repeatable)."
)
@click.option("--all", "all_parents", is_flag=True, help="Every parent that holds zombies.")
@click.option(
    "--timeout",
    type=Seconds(0.01, 3600),
    default=2.0,
    show_default=True,
    metavar="S",
    help="How long to wait for each step to show (the last check, that the adopter "
    "reaped the zombies of an ended parent, waits at least 5s).",
)
@click.option(
    "--kill-parent",
    is_flag=True,
    help="If nudging fails, SIGTERM the parent so that its adopter reaps the zombies.",
)
@click.option(
    "--force", is_flag=True, help="With --kill-parent: SIGKILL a parent that outlives SIGTERM."
)
@click.option(
    "--stop-container",
    is_flag=True,
    help="With --kill-parent: allow ending a container's main process (its PID 1's one "
    "child under tini, dumb-init, …), which stops the container. Only for parents named "
    "by --pid or --zombie, never --all; a container's PID 1 is never ended.",
)
@click.option(
    "--yes", "-y", is_flag=True, help="Act without asking (needed when not on a terminal)."
)
@click.option("--dry-run", is_flag=True, help="Only show the plan; signal nothing.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Log every signal, and how it was sent, on stderr."
)
@click.option("--no-pidfd", is_flag=True, hidden=True, help="Use the pid+create-time fallback.")
def command(
    parents: tuple[int, ...],
    zombies: tuple[int, ...],
    all_parents: bool,
    timeout: float,
    kill_parent: bool,
    force: bool,
    stop_container: bool,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    verbose: bool,
    no_pidfd: bool,
) -> int:
    """Clear zombies safely: nudge their parents with SIGCHLD; optionally end them."""
    if force and not kill_parent:
        raise BadUsage("--force only goes with --kill-parent (it SIGKILLs the parent)")
    if stop_container and not kill_parent:
        raise BadUsage("--stop-container only goes with --kill-parent (it ends the parent)")
    plan = make_plan(
        parents,
        zombies,
        all_parents,
        timeout=timeout,
        kill_parent=kill_parent,
        force=force,
        stop_container=stop_container,
    )

    def emit(report_obj: object) -> None:
        if as_json:
            write(json.dumps(report_obj) + "\n")

    if dry_run:
        report = planned_report(plan)
        if as_json:
            emit(report.as_dict())
        else:
            _draw_plan(plan, "dry run: nothing was signalled")
        return report.exit_code()

    if plan.actionable and not yes:
        if as_json:
            raise BadUsage(
                "--json does not ask: add --yes to act (or --dry-run to only plan); "
                "nothing was signalled"
            )
        _draw_plan(plan)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise BadUsage(
                "not a terminal, so not asking: add --yes to act (or --dry-run to only plan); "
                "nothing was signalled"
            )
        from zombiectl.reaping.render import consent_question

        if not click.confirm(consent_question(plan), default=False):
            raise BadUsage("not confirmed: nothing was signalled")
    elif not as_json and not yes:
        _draw_plan(plan)

    use_pidfd = False if no_pidfd else pidfd_supported()

    def log(line: str) -> None:
        if verbose:
            _draw_log(line)

    if not use_pidfd:
        log(
            "pidfds are not available here: signalling by pid after checking the "
            "parent's create time (psutil), which leaves a tiny window for pid reuse"
        )
    try:
        with sigterm_raises():
            report = execute(plan, use_pidfd=use_pidfd, log=log)
    except KeyboardInterrupt as interrupt:
        raise Interrupted("interrupted: no further signal was sent", signum_of(interrupt)) from None
    if as_json:
        emit(report.as_dict())
    else:
        _draw_report(report)
    return report.exit_code()


# Drawn with rich, which is imported only here: `reap --json` draws nothing.


def _draw_plan(plan: Plan, note: str | None = None) -> None:
    from zombiectl.reaping.render import plan_table

    out = console_for_stdout()
    out.print(plan_table(plan))
    if note is not None:
        out.print(note, style="dim")


def _draw_report(report: ReapReport) -> None:
    from zombiectl.reaping.render import report_table

    console_for_stdout().print(report_table(report))


def _draw_log(line: str) -> None:
    from zombiectl.ui.safe import data

    console_for_stderr().print(data(f"zombiectl: {line}"))
