"""Renderers for `zombiectl check`: the report as plain lines, a rich panel, JSON, JUnit XML,
and the views shown while the check runs (plain progress lines, or `watch`'s live table).

Names and command lines come from other users' programs: they pass through
`untrusted.display()` on their way to a screen and `untrusted.for_json()` into JSON and XML.
"""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zombiectl.check.verdict import Criterion, Report, percentile
from zombiectl.untrusted import display, for_json

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from zombiectl.supervise.tree import Tree

SUITE = "zombiectl check"
JUNIT_OUTPUT_LIMIT = 64 * 1024  # characters of each of CMD's streams kept in the XML


# --------------------------------------------------------------------------- data


def lifetime_ms(report: Report) -> dict[str, float | None]:
    values = report.facts.lifetimes_ms
    return {
        "p50": _ms(percentile(values, 50)),
        "p90": _ms(percentile(values, 90)),
        "max": _ms(max(values) if values else None),
    }


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def as_dict(report: Report, name: str | None = None) -> dict[str, Any]:
    f = report.facts
    return {
        "name": None if name is None else for_json(name),
        "command": [for_json(a) for a in f.command],
        "pid": f.pid,
        "exit_status": f.exit_status,
        "seconds": round(f.seconds, 3),
        "resolution_ms": f.resolution_ms,
        "children": f.children,
        "max_zombies": f.max_zombies,
        "zombies_before": f.zombies_before,
        "zombies_at_end": f.zombies_at_end,
        "orphans_adopted": f.orphans_adopted,
        "clients": f.clients,
        "echoes_ok": f.echoes_ok,
        "echoes_failed": f.echoes_failed,
        "zombie_lifetime_ms": lifetime_ms(report),
        "leakers": [
            {
                "pid": lk.pid,
                "name": for_json(lk.name),
                "cmdline": for_json(lk.cmdline),
                "zombies": lk.zombies,
            }
            for lk in f.leakers
        ],
        "verdict": report.verdict,
        "reasons": [for_json(r) for r in report.reasons],
        "criteria": [
            {
                "name": c.name,
                "outcome": c.outcome,
                "message": _message(c),
            }
            for c in report.criteria
        ],
        "hints": [{"code": h.code, "text": for_json(h.text)} for h in report.hints],
        "mode": f.mode,
        "collected_by_parent": f.collected_by_parent,
        "collected_by_zombiectl": f.collected_by_zombiectl,
        "not_reaped_by_parent": f.not_reaped_by_parent,
        "still_running_after_settle": f.still_running_after_settle,
        "processes_ended_by_check": f.processes_ended_by_check,
        "replies_without_eof": f.replies_without_eof,
        "interrupted": f.interrupted_by is not None,
        "client_seconds": None if f.client_seconds is None else round(f.client_seconds, 3),
        "timed_out": f.timed_out,
        "ended_by_check": f.ended_by_check,
        "stuck": [for_json(s) for s in f.stuck],
    }


def _message(c: Criterion) -> str | None:
    """A criterion's message: its failure or error (stable), else why it was skipped."""
    text = c.failure or c.error or c.skipped
    return None if text is None else for_json(text)


def json_text(report: Report, name: str | None = None) -> str:
    return json.dumps(as_dict(report, name))


def junit_xml(report: Report, name: str | None = None) -> bytes:
    """One testsuite, one testcase per criterion, named by --name.

    A failure's type is its criterion and its message is the same from run to run; the
    pids of that run are properties, and CMD's output is the suite's system-out and
    system-err (head and tail, at most `JUNIT_OUTPUT_LIMIT` each).
    """
    f = report.facts
    suite_name = SUITE if name is None else xml_text(name)
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(report.criteria)),
        failures=str(sum(1 for c in report.criteria if c.failed)),
        skipped=str(sum(1 for c in report.criteria if c.outcome == "skipped")),
        errors=str(sum(1 for c in report.criteria if c.error is not None)),
        time=f"{f.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in _properties(report):
        ET.SubElement(props, "property", name=key, value=xml_text(value))
    for c in report.criteria:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=c.name, time="0")
        if c.error is not None:
            ET.SubElement(case, "error", message=xml_text(c.error), type=c.name).text = xml_text(
                c.reason or c.error
            )
        elif c.failure is not None:
            ET.SubElement(
                case, "failure", message=xml_text(c.failure), type=c.name
            ).text = xml_text(c.reason or c.failure)
        elif c.skipped is not None:
            ET.SubElement(case, "skipped", message=xml_text(c.skipped))
    ET.SubElement(suite, "system-out").text = xml_text(_capped(f.stdout_text, JUNIT_OUTPUT_LIMIT))
    ET.SubElement(suite, "system-err").text = xml_text(_capped(f.stderr_text, JUNIT_OUTPUT_LIMIT))
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def _properties(report: Report) -> list[tuple[str, str]]:
    """What changes from run to run (pids), kept out of the messages."""
    f = report.facts
    out = [("command", " ".join(f.command)), ("verdict", report.verdict)]
    if f.pid:
        out.append(("pid", str(f.pid)))
    out.extend(("leaker", f"pid {lk.pid} {lk.name}: {lk.zombies}") for lk in f.leakers)
    if f.environment_pid is not None:
        out.append(("in the way", str(f.environment_pid)))
    out.extend(("hint", h.code) for h in report.hints)
    return out


def _capped(text: str, limit: int) -> str:
    """At most `limit` characters: the head and the tail, and how much was cut between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut ...]\n{text[-half:]}"


def xml_text(text: str) -> str:
    """Text XML 1.0 can carry: control characters (but tab and newlines) shown escaped."""
    text = for_json(text)
    if all(ch in "\t\n\r" or (" " <= ch < "\x7f") for ch in text):
        return text
    return "".join(ch if ch in "\t\n\r" or _xml_char(ch) else f"\\x{ord(ch):02x}" for ch in text)


def _xml_char(ch: str) -> bool:
    n = ord(ch)
    return (0x20 <= n < 0x7F) or (0xA0 <= n <= 0xD7FF) or (0xE000 <= n <= 0xFFFD) or n > 0xFFFF


# --------------------------------------------------------------------------- Gradescope


def gradescope(report: Report, name: str | None = None) -> dict[str, Any]:
    """Gradescope's results.json: one test per criterion, 1 or 0 out of 1; the sum.

    A criterion the options leave out (no --tcp, no --max-zombie-age) is not a test; one
    skipped for this program (no client was served) scores 0, since nothing earned it.
    """
    tests = []
    for c in report.criteria:
        if c.by_option:
            continue
        passed = c.outcome == "passed"
        tests.append(
            {
                "name": c.name,
                "score": 1 if passed else 0,
                "max_score": 1,
                "status": "passed" if passed else "failed",
                "output": for_json(c.reason or c.skipped or "ok"),
            }
        )
    lines = verdict_lines(report) + hint_lines(report)
    if name is not None:
        lines.insert(0, for_json(name))
    return {
        "score": sum(t["score"] for t in tests),
        "execution_time": round(report.facts.seconds, 3),
        "output": "\n".join(lines),
        "tests": tests,
    }


def gradescope_text(report: Report, name: str | None = None) -> str:
    return json.dumps(gradescope(report, name), indent=1) + "\n"


# --------------------------------------------------------------------------- text


def _status_text(report: Report) -> str:
    f = report.facts
    if f.exit_status is None:
        return "still running" if f.mode == "pid" else "unknown"
    text = str(f.exit_status)
    if f.exit_status > 128 and f.mode == "run" and not f.not_started:
        try:
            text += f" ({signal.Signals(f.exit_status - 128).name}"
        except ValueError:
            text += " (a signal"
        text += ", sent by the check)" if f.ended_by_check else ")"
    return text


def _resolution(report: Report) -> str:
    r = report.facts.resolution_ms
    return "exact (kernel events)" if r is None else f"sampled every {r:g} ms"


def summary_lines(report: Report) -> list[str]:
    f = report.facts
    if f.environment:
        return [f"zombiectl check: {display(' '.join(f.command))} (not carried out)"]
    life = lifetime_ms(report)
    lines = [
        f"zombiectl check: {display(' '.join(f.command))}"
        + (f" (pid {f.pid})" if f.pid else " (not started)"),
        f"  children started      {f.children}",
        f"  most zombies at once  {f.max_zombies}",
        f"  zombies at the end    {f.zombies_at_end}",
    ]
    if f.mode == "pid":
        lines.append(f"  zombies before        {f.zombies_before}")
        lines.append("  (--pid: nothing was adopted, signalled or ended)")
    lines.append(f"  orphans adopted       {f.orphans_adopted}")
    if f.tcp:
        lines.append(
            f"  clients               {f.clients} ({f.echoes_ok} ok, {f.echoes_failed} failed)"
        )
    lines.append(
        "  zombie lifetime ms    "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.1f}'}" for k, v in life.items())
    )
    lines.append(
        f"  collected             {f.collected_by_parent} by their parent,"
        f" {f.collected_by_zombiectl} by zombiectl"
    )
    lines.append(f"  counts                {_resolution(report)}")
    lines.append(f"  exit status           {_status_text(report)}")
    return lines


def leaker_lines(report: Report) -> list[str]:
    if not report.facts.leakers:
        return []
    out = ["leaking parents:"]
    for lk in report.facts.leakers:
        out.append(
            f"  pid {lk.pid} {display(lk.name)}: {lk.zombies} zombie(s)  {display(lk.cmdline)}"
        )
    return out


def verdict_lines(report: Report) -> list[str]:
    out = [f"verdict: {report.verdict}"]
    out.extend(f"  {display(reason)}" for reason in report.reasons)
    return out


def hint_lines(report: Report) -> list[str]:
    """What to fix: each hint's code, then its text (a quoted stderr keeps its lines)."""
    if not report.hints:
        return []
    out = ["hints:"]
    for h in report.hints:
        first, *rest = h.text.splitlines() or [""]
        out.append(f"  {h.code}: {display(first)}")
        out.extend(f"      {display(line)}" for line in rest)
    return out


def name_lines(name: str | None) -> list[str]:
    return [] if name is None else [f"name: {display(name)}"]


def plain_text(report: Report, name: str | None = None) -> str:
    lines = name_lines(name) + summary_lines(report) + leaker_lines(report)
    return "\n".join(lines + verdict_lines(report) + hint_lines(report)) + "\n"


def panel(report: Report, name: str | None = None) -> RenderableType:
    """The verdict panel on a terminal: the same lines, the verdict in colour."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    ok = report.verdict == "pass"
    body = Text("\n".join(name_lines(name) + summary_lines(report) + leaker_lines(report)))
    verdict = Text("\n".join(verdict_lines(report)), style="bold green" if ok else "bold red")
    hints = Text("\n".join(hint_lines(report)))
    parts = [body, verdict, hints] if report.hints else [body, verdict]
    return Panel(Group(*parts), title=SUITE, border_style="green" if ok else "red")


# --------------------------------------------------------------------------- views


class PlainView:
    """Progress as plain lines (piped, or on stderr under --json)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def phase(self, text: str) -> None:
        self.write(f"zombiectl check: {display(text)}\n")

    def tick(self, tree: Tree, now: float) -> None:
        pass


class LiveView:
    """`watch`'s live table of the tree, refreshed while the check runs."""

    def __init__(self, console: Console) -> None:
        import time

        from rich.live import Live

        from zombiectl.watching.tracker import Tracker

        self.console = console
        self.tracker = Tracker(None, time.monotonic())
        self.root = 0
        self.live = Live(console=console, auto_refresh=False, transient=True)
        self.last_phase = ""

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def phase(self, text: str) -> None:
        self.last_phase = display(text)
        self.console.print(f"zombiectl check: {self.last_phase}", markup=False, highlight=False)

    def tick(self, tree: Tree, now: float) -> None:
        from rich.console import Group
        from rich.text import Text

        from zombiectl.proc.table import read_proc
        from zombiectl.watching.render import live_view

        self.tracker.pid = tree.root
        pids = [m.pid for m in tree.members.values() if m.gone is None and m.pid != tree.root]
        procs = [p for p in (read_proc(pid) for pid in pids[:2000]) if p is not None]
        root = read_proc(tree.root)
        sample = self.tracker.update(procs, now, name=root.name if root else "")
        view = Group(Text(self.last_phase, style="dim"), live_view(sample, 0.25))
        self.live.update(view, refresh=True)
